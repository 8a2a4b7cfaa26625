"""The one exception hierarchy of mlwright.

Every error a user can cause derives from :class:`MlwrightError`. Messages say what was
expected, what was received and how to fix it; the CLI prints them as one paragraph and
exits with :attr:`MlwrightError.exit_code`, never with a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ColumnNotFoundError",
    "ConfigError",
    "ContractError",
    "DataSourceError",
    "EmptyDataError",
    "ExportError",
    "IntegrityError",
    "LoopError",
    "MissingDependencyError",
    "MlwrightError",
    "MonitorError",
    "RegistryError",
    "ServingBudgetError",
    "ServingError",
    "TargetError",
]


class MlwrightError(Exception):
    """Base class of every error mlwright raises on purpose."""

    exit_code: int = 2


class ConfigError(MlwrightError, ValueError):
    """An ``mlwright.toml`` or an argument that cannot be used as given."""


class DataSourceError(MlwrightError, OSError):
    """A data source that is missing, unreadable, or of an unknown kind."""


class EmptyDataError(DataSourceError):
    """A source that was read but holds no rows (or no columns)."""


class ColumnNotFoundError(MlwrightError, KeyError):
    """A column named by the user that the table does not have."""

    def __init__(self, column: str, available: Iterable[str], *, role: str = "column") -> None:
        available = [str(c) for c in available]
        close = difflib.get_close_matches(str(column), available, n=3, cutoff=0.6)
        # Case-insensitive exact matches are the most common typo; put them first.
        close = [c for c in available if c.lower() == str(column).lower()] + [
            c for c in close if c.lower() != str(column).lower()
        ]
        hint = f" Did you mean {' or '.join(repr(c) for c in close[:3])}?" if close else ""
        shown = ", ".join(repr(c) for c in available[:20])
        more = f" and {len(available) - 20} more" if len(available) > 20 else ""
        self.column = column
        self.suggestions = close[:3]
        super().__init__(
            f"The {role} {column!r} is not in the table.{hint} "
            f"The table has {len(available)} columns: {shown}{more}."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TargetError(MlwrightError, ValueError):
    """A target column that cannot be learned from (all missing, a single class, ...)."""


class ContractError(MlwrightError, ValueError):
    """A data contract file that cannot be used (wrong version, malformed)."""


class MissingDependencyError(MlwrightError, ImportError):
    """An optional dependency that a feature needs is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        install = f"pip install 'mlwright[{extra}]'" if extra else f"pip install {package}"
        super().__init__(
            f"{feature} needs the package {package!r}, which is not installed. "
            f"Install it with: {install}"
        )


class RegistryError(MlwrightError):
    """A model, version or alias that the registry does not have, or cannot trust."""


class IntegrityError(RegistryError):
    """An artifact whose hash does not match the one recorded when it was registered."""


class ServingError(MlwrightError):
    """A server that cannot start as configured (no model, a port in use, no API key)."""


class ServingBudgetError(ConfigError):
    """A serving budget (``--max-latency-ms``, ``--max-size-mb``) no trained model meets."""


class MonitorError(MlwrightError):
    """A monitoring window or reference that cannot be computed (no predictions, ...)."""


class LoopError(MlwrightError):
    """A retraining, comparison or promotion step that cannot be carried out."""


class ExportError(MlwrightError):
    """A model (a member, a column) that cannot be exported exactly in the asked format."""
