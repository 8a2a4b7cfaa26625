"""The contract's models: column specs, reference statistics, the contract, its JSON.

Logical types (``dtype``), the same whatever file or database held the table:

* ``boolean``: a bool column, or numbers that are all 0 or 1 (SQLite stores booleans so);
* ``integer``: whole numbers, even when stored as float because of missing values;
* ``float``: other numbers; ``datetime``: dates and times, compared in UTC (naive values
  are taken to be UTC); ``string``: everything else, and columns with no values at all.

Policies (per column, editable in the JSON) for a value outside what training saw:

* ``reject``: an error; validation fails and serving refuses the row.
* ``warn``: a warning; the value is used as is (encoders treat unknown categories as
  unknown, trees extrapolate flat).
* ``impute``: a warning; the value is replaced by missing and imputed like one.
* ``ignore``: not reported.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mlwright.data.kinds import ColumnKind, Task
from mlwright.exceptions import ColumnNotFoundError, ContractError

__all__ = [
    "FORMAT",
    "VERSION",
    "ColumnSpec",
    "ColumnStats",
    "Contract",
    "ContractMeta",
    "DatetimeStats",
    "FrequencyStats",
    "LogicalType",
    "NumericStats",
    "Policy",
    "Scalar",
    "Severity",
    "TargetSpec",
    "TextStats",
]

FORMAT: Literal["mlwright.contract"] = "mlwright.contract"
VERSION: Literal[1] = 1

Scalar = bool | int | float | str

class LogicalType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"
    DATETIME = "datetime"


class Policy(StrEnum):
    REJECT = "reject"
    WARN = "warn"
    IMPUTE = "impute"
    IGNORE = "ignore"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class _Model(BaseModel):
    # Unknown fields in a contract file are typos or another format: refuse them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NumericStats(_Model):
    min: float
    max: float
    mean: float
    std: float
    quantile_probs: list[float]
    quantiles: list[float]
    bin_edges: list[float]
    bin_counts: list[int]


class FrequencyStats(_Model):
    """Counts of the most common values (all of them for closed sets)."""

    values: list[Scalar]
    counts: list[int]
    other_count: int = 0  # non-missing rows holding a value not listed


class TextStats(_Model):
    length_min: int
    length_max: int
    length_mean: float
    length_quantiles: list[float]  # at QUANTILE_PROBS, in characters


class DatetimeStats(_Model):
    min: str  # ISO 8601, UTC
    max: str
    quantiles: list[str]


class ColumnStats(_Model):
    """Reference statistics of one training column (what monitoring compares against)."""

    count: int  # non-missing values
    missing: int
    missing_rate: float
    n_unique: int
    numeric: NumericStats | None = None
    frequencies: FrequencyStats | None = None
    text: TextStats | None = None
    datetime: DatetimeStats | None = None


class ColumnSpec(_Model):
    name: str
    kind: ColumnKind
    dtype: LogicalType
    nullable: bool
    required: bool = True
    on_missing: Policy = Policy.REJECT
    categories: list[Scalar] | None = None
    on_unknown: Policy | None = None
    min: float | None = None
    max: float | None = None
    earliest: str | None = None  # datetime range, ISO 8601 UTC
    latest: str | None = None
    on_out_of_range: Policy | None = None
    stats: ColumnStats


class TargetSpec(_Model):
    name: str
    task: Task
    classes: list[Scalar] | None = None  # sorted; None for regression


class ContractMeta(_Model):
    """Where and when the contract was learned: not part of its content."""

    created_at: str
    mlwright_version: str
    source: str | None = None


class Contract(_Model):
    """The learned contract of a training table. Saved as JSON by :meth:`save`."""

    format: Literal["mlwright.contract"] = FORMAT
    version: Literal[1] = VERSION
    columns: list[ColumnSpec]
    target: TargetSpec | None = None
    n_rows: int
    fingerprint: str
    meta: ContractMeta

    # -- lookups -------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """All column names, in training order (features and target)."""
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in training order: every column but the target."""
        target = self.target.name if self.target else None
        return [c.name for c in self.columns if c.name != target]

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        return {c.name: c.kind for c in self.columns}

    def column(self, name: str) -> ColumnSpec:
        """The spec of column ``name``; :class:`ColumnNotFoundError` with suggestions if none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise ColumnNotFoundError(name, self.names, role="contract column")

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def content(self) -> dict[str, Any]:
        """The contract as a dict without :class:`ContractMeta`: equal for equal data."""
        return self.model_dump(mode="json", exclude={"meta"})

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "the contract") -> Contract:
        """Build a contract from parsed JSON, checking the format and version first."""
        fix = ("Re-learn the contract with this mlwright: mlwright contract DATA --target "
               "COLUMN -o contract.json (or mlwright.learn_contract(df).save(path)).")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ContractError(
                f"{origin} is not an mlwright data contract: expected a JSON object with "
                f'"format": "{FORMAT}", found {found!r}. {fix}'
            )
        if data.get("version") != VERSION:
            from mlwright import __version__

            raise ContractError(
                f"{origin} is contract format version {data.get('version')!r}, but this "
                f"mlwright ({__version__}) reads version {VERSION}. {fix}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()[:5]
            )
            more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
            raise ContractError(
                f"{origin} is malformed: {problems}{more}. Was it edited by hand? {fix}"
            ) from None

    @classmethod
    def from_json(cls, text: str, *, origin: str = "the contract") -> Contract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(
                f"{origin} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                f"{exc.colno}). Expected a contract written by 'mlwright contract'; re-learn it "
                f"with this mlwright: mlwright contract DATA --target COLUMN -o contract.json."
            ) from None
        return cls.from_dict(data, origin=origin)

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read a contract saved by :meth:`save`; :class:`ContractError` if unusable."""
        path = Path(path)
        if not path.is_file():
            raise ContractError(
                f"No contract file at {str(path)!r}: expected a JSON file written by "
                f"'mlwright contract DATA --target COLUMN -o {path.name}'. Check the path."
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ContractError(f"Cannot read the contract {str(path)!r}: {exc}.") from exc
        return cls.from_json(text, origin=f"The file {str(path)!r}")
