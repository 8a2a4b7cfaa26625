"""What a profile holds: per-column facts, warnings with a severity, and the table's facts;
JSON in and out, and the HTML page."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._html import fmt_num
from mlwright.data.kinds import ColumnKind, Task

__all__ = ["ColumnProfile", "Profile", "ProfileWarning", "Severity"]


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass
class ProfileWarning:
    """Something about the data to act on before training."""

    code: str  # target_leakage, identifier, constant, high_missing, datetime, free_text, pii...
    column: str | None
    message: str
    severity: Severity
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)


@dataclass
class ColumnProfile:
    """Statistics and chart data for one column."""

    name: str
    kind: ColumnKind
    dtype: str
    count: int  # non-missing values
    missing: int
    missing_share: float
    distinct: int  # distinct non-missing values
    top_values: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    chart: dict[str, Any] = field(default_factory=dict)
    is_target: bool = False

    def __post_init__(self) -> None:
        self.kind = ColumnKind(self.kind)

    @property
    def summary(self) -> str:
        """One short line describing the values (for the CLI and the overview table)."""
        s = self.stats
        if self.kind is ColumnKind.NUMERIC and "mean" in s:
            return (f"mean {fmt_num(s['mean'])}, median {fmt_num(s['quantiles']['0.5'])}, "
                    f"range {fmt_num(s['min'])} … {fmt_num(s['max'])}")
        if self.kind is ColumnKind.DATETIME and s.get("min"):
            return f"{s['min'][:10]} … {s['max'][:10]}"
        if self.kind is ColumnKind.IDENTIFIER:
            return f"{self.distinct:,} distinct values ({self.distinct / self.count:.0%} unique)"
        if self.kind is ColumnKind.TEXT and "mean_words" in s:
            return f"{s['mean_words']:.0f} words, {s['mean_chars']:.0f} characters on average"
        if self.top_values:
            shown = ", ".join(f"{v['value']} ({v['share']:.0%})" for v in self.top_values[:3])
            return shown + (", …" if self.distinct > 3 else "")
        return "all values missing" if self.count == 0 else ""


@dataclass
class Profile:
    """The profile of a table. ``to_dict``/``to_json`` round-trip; ``to_html`` draws it."""

    n_rows: int
    n_columns: int
    duplicate_rows: int
    memory_bytes: int
    missing_cells: int
    columns: list[ColumnProfile]
    warnings: list[ProfileWarning]
    target: str | None = None
    task: Task | None = None
    target_distribution: dict[str, Any] | None = None
    imbalance_ratio: float | None = None
    leakage: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task = Task(self.task) if self.task is not None else None

    def __getitem__(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        from mlwright.exceptions import ColumnNotFoundError

        raise ColumnNotFoundError(name, [c.name for c in self.columns])

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        return {c.name: c.kind for c in self.columns}

    def warnings_for(self, code: str | None = None, column: str | None = None
                     ) -> list[ProfileWarning]:
        """The warnings with this code and/or about this column."""
        return [w for w in self.warnings
                if (code is None or w.code == code) and (column is None or w.column == column)]

    def flagged(self, code: str) -> list[str]:
        """The columns carrying a warning with this code."""
        return [w.column for w in self.warnings if w.code == code and w.column is not None]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (no NaN, no numpy or pandas values)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        data = dict(data)
        data["columns"] = [ColumnProfile(**c) for c in data["columns"]]
        data["warnings"] = [ProfileWarning(**w) for w in data["warnings"]]
        return cls(**data)

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """The profile as JSON text, also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def read_json(cls, path: str | Path) -> Profile:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write a self-contained HTML page (Plotly inlined, opens with no network)."""
        from mlwright.data.profile.page import render_profile

        return render_profile(self, Path(path), title=title)


def _plain(value: Any) -> Any:
    """Recursively turn dataclass output into JSON-native values (NaN becomes None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return str(value.value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value
