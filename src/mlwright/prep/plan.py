"""Which columns play which part in preparation; known before anything is fitted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlwright.data.kinds import ColumnKind

__all__ = ["PrepPlan", "plan_columns"]

_DROPPED = {ColumnKind.IDENTIFIER, ColumnKind.CONSTANT}


@dataclass(frozen=True)
class PrepPlan:
    """Which columns play which part; known before anything is fitted."""

    numeric: list[str] = field(default_factory=list)
    boolean: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    high_cardinality: list[str] = field(default_factory=list)
    datetime: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def n_ordinal(self) -> int:
        """Width of the leading ordinal block of the ``tree`` style."""
        return len(self.categorical) + len(self.high_cardinality)

    @property
    def has_text(self) -> bool:
        return bool(self.text)

    @property
    def used(self) -> list[str]:
        return [*self.numeric, *self.boolean, *self.categorical, *self.high_cardinality,
                *self.datetime, *self.text]


def plan_columns(kinds: Mapping[str, ColumnKind | str], target: str | None = None) -> PrepPlan:
    """Sort feature columns by kind; identifiers and constants are dropped."""
    parts: dict[str, list[str]] = {k: [] for k in
                                   ("numeric", "boolean", "categorical", "high_cardinality",
                                    "datetime", "text", "dropped")}
    for name, kind in kinds.items():
        if name == target:
            continue
        kind = ColumnKind(kind)
        key = "dropped" if kind in _DROPPED else kind.value
        parts[key].append(name)
    return PrepPlan(**parts)
