"""The batch validator: a table checked against a contract, vectorised, every violation by
row and column.

Wrong types, unparseable dates and missing required columns are always errors; extra columns
are warnings; other rules follow the column's policy (see :mod:`.schema`). What a value of
each type is, and the messages, come from :mod:`.rules`, shared with the serving validator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data._base import REPEATED_COLUMNS
from mlwright.data.contract import rules
from mlwright.data.contract.schema import ColumnSpec, Contract, LogicalType, Policy, Severity
from mlwright.exceptions import ConfigError

__all__ = ["ValidationResult", "Violation", "validate"]

#: How many categories an error message lists before "and N more".
_SHOWN = 8


@dataclass(frozen=True)
class Violation:
    """One broken rule. ``row`` is the frame's index label (None for a whole column)."""

    row: Any
    column: str
    rule: str
    severity: Severity
    action: Policy
    value: Any
    expected: str
    message: str


_FIELDS = ["row", "column", "rule", "severity", "action", "value", "expected", "message"]


def _violation(fields: tuple[Any, ...]) -> Violation:
    row, column, rule, severity, action, value, expected, message = fields
    return Violation(row, column, rule, Severity(severity), Policy(action), value, expected,
                     message)


class ValidationResult:
    """The violations :func:`validate` found, as a frame with one row per violation."""

    def __init__(self, frame: pd.DataFrame, n_rows: int) -> None:
        self._frame = frame
        self.n_rows = n_rows

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return self.n_errors == 0

    @property
    def n_errors(self) -> int:
        return int((self._frame["severity"] == Severity.ERROR).sum())

    @property
    def n_warnings(self) -> int:
        return int((self._frame["severity"] == Severity.WARNING).sum())

    def _violations(self, severity: Severity) -> list[Violation]:
        rows = self._frame[self._frame["severity"] == severity]
        return [_violation(r) for r in rows[_FIELDS].itertuples(index=False, name=None)]

    @property
    def errors(self) -> list[Violation]:
        return self._violations(Severity.ERROR)

    @property
    def warnings(self) -> list[Violation]:
        return self._violations(Severity.WARNING)

    def __len__(self) -> int:
        return len(self._frame)

    def __iter__(self) -> Iterator[Violation]:
        for r in self._frame[_FIELDS].itertuples(index=False, name=None):
            yield _violation(r)

    def to_frame(self) -> pd.DataFrame:
        """One row per violation: row, column, rule, severity, action, value, expected,
        message (errors first, then by column order and row)."""
        return self._frame.copy()

    def rows_with_errors(self) -> list[Any]:
        """Index labels of the rows that have at least one error."""
        errors = self._frame[(self._frame["severity"] == Severity.ERROR)
                             & self._frame["row"].notna()]
        return list(pd.unique(errors["row"]))

    def summary(self) -> pd.DataFrame:
        """Counts per column, rule and severity, with one example value each."""
        if self._frame.empty:
            return pd.DataFrame(columns=["column", "rule", "severity", "count", "example"])
        grouped = self._frame.groupby(["column", "rule", "severity"], sort=False, dropna=False)
        out = grouped.agg(count=("message", "size"), example=("value", "first")).reset_index()
        return out.sort_values(["severity", "count"], ascending=[True, False],
                               kind="stable").reset_index(drop=True)

    def __repr__(self) -> str:
        return (f"ValidationResult(ok={self.ok}, errors={self.n_errors}, "
                f"warnings={self.n_warnings}, rows={self.n_rows})")


class _Collector:
    """Accumulates violations column by column, as small frames (vectorised)."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def column_level(self, column: str, rule: str, severity: Severity, expected: str,
                     message: str) -> None:
        self.parts.append(pd.DataFrame({
            "row": [None], "column": [column], "rule": [rule], "severity": [severity],
            "action": [Policy.REJECT if severity is Severity.ERROR else Policy.WARN],
            "value": [None], "expected": [expected], "message": [message],
        }))

    def rows(self, col: pd.Series, mask: pd.Series | np.ndarray, rule: str,
             policy: Policy | None, expected: str, describe: str) -> None:
        """Record ``rule`` for the rows where ``mask`` holds; ``describe`` is formatted with
        ``value`` (the repr of the offending value)."""
        if policy is None or policy is Policy.IGNORE:
            return
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        rows = col.index[mask]
        values = col[mask].tolist()
        severity = Severity.ERROR if policy is Policy.REJECT else Severity.WARNING
        suffix = " It will be imputed as missing." if policy is Policy.IMPUTE else ""
        name = str(col.name)
        messages = [
            f"Row {r!r}, column {name!r}: {describe.format(value=rules.show(v))}{suffix}"
            for r, v in zip(rows, values, strict=True)
        ]
        self.parts.append(pd.DataFrame({
            "row": pd.Series(list(rows), dtype=object),
            "column": name, "rule": rule, "severity": severity, "action": policy,
            "value": pd.Series(values, dtype=object), "expected": expected,
            "message": messages,
        }))

    def result(self, n_rows: int) -> ValidationResult:
        if not self.parts:
            frame = pd.DataFrame({f: pd.Series(dtype=object) for f in _FIELDS})
        else:
            frame = pd.concat(self.parts, ignore_index=True)
            # Errors first; within a severity, the order of discovery (column order, row).
            frame = frame.sort_values("severity", kind="stable").reset_index(drop=True)
        for f in ("column", "rule", "severity", "action", "expected", "message"):
            frame[f] = frame[f].map(str).astype(object)  # plain text, not enum members
        return ValidationResult(frame[_FIELDS], n_rows)



def _list(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"




def _check_numbers(col: pd.Series, present: np.ndarray, spec: ColumnSpec,
                   out: _Collector) -> None:
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        out.rows(col, present, "type", Policy.REJECT, rules.expected("number"),
                 rules.MESSAGES["date_not_number"])
        return
    values = rules.parse_numbers(col)
    out.rows(col, present & np.isnan(values), "type", Policy.REJECT,
             rules.expected("number"), rules.MESSAGES["not_number"])
    with np.errstate(invalid="ignore"):
        if spec.dtype is LogicalType.INTEGER:
            fractional = present & np.isfinite(values) & (np.floor(values) != values)
            out.rows(col, fractional, "not_integer", Policy.WARN, "a whole number",
                     rules.MESSAGES["not_integer"])
        if spec.min is not None and spec.max is not None:
            outside = present & ((values < spec.min) | (values > spec.max))
            lo, hi = _fmt_number(spec.min), _fmt_number(spec.max)
            out.rows(col, outside, "out_of_range", spec.on_out_of_range,
                     f"between {lo} and {hi}",
                     f"{{value}} is outside the training range [{lo}, {hi}].")


def _check_booleans(col: pd.Series, present: np.ndarray, spec: ColumnSpec,
                    out: _Collector) -> None:
    values, parsed = rules.parse_booleans(col)
    parsed = parsed & present
    out.rows(col, present & ~parsed, "type", Policy.REJECT, rules.expected("boolean"),
             rules.MESSAGES["not_boolean"])
    if spec.categories is not None:
        allowed = np.array([bool(c) for c in spec.categories])
        unknown = parsed & ~np.isin(values, allowed)
        out.rows(col, unknown, "unknown_category", spec.on_unknown, f"one of {spec.categories}",
                 f"{{value}} was never seen in training (only {spec.categories}).")


def _check_strings(col: pd.Series, present: np.ndarray, spec: ColumnSpec,
                   out: _Collector) -> None:
    text, parsed = rules.parse_strings(col)
    out.rows(col, present & ~parsed, "type", Policy.REJECT, rules.expected("string"),
             rules.MESSAGES["not_string"])
    if spec.categories is None:
        return
    allowed = [str(c) for c in spec.categories]
    unknown = present & parsed & ~pd.Series(text).isin(allowed).to_numpy()
    expected = f"one of {_list(allowed)}"
    out.rows(col, unknown, "unknown_category", spec.on_unknown, expected,
             f"{{value}} is not a known category; expected {expected}.")


def _check_datetimes(col: pd.Series, present: np.ndarray, spec: ColumnSpec,
                     out: _Collector) -> None:
    if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        out.rows(col, present, "type", Policy.REJECT, "a date/time",
                 rules.MESSAGES["not_datetime"])
        return
    stamps = rules.parse_datetimes(col)
    bad = present & stamps.isna().to_numpy()
    if bad.any() and col.dtype == object:  # a number, list or object is not even a date
        dated = np.fromiter((isinstance(v, str | date) for v in col.to_numpy()), dtype=bool,
                            count=len(col))
        out.rows(col, bad & ~dated, "type", Policy.REJECT, "a date/time",
                 rules.MESSAGES["not_datetime"])
        bad &= dated
    out.rows(col, bad, "unparseable_datetime", Policy.REJECT, rules.expected("datetime"),
             rules.MESSAGES["unparseable_datetime"])
    if spec.earliest is not None and spec.latest is not None:
        lo, hi = pd.Timestamp(spec.earliest), pd.Timestamp(spec.latest)
        outside = (present & ((stamps < lo) | (stamps > hi)).to_numpy(dtype=bool))
        out.rows(col, outside, "out_of_range", spec.on_out_of_range,
                 f"between {spec.earliest} and {spec.latest}",
                 f"{{value}} is outside the training period [{spec.earliest}, {spec.latest}].")


_CHECKS = {
    LogicalType.INTEGER: _check_numbers,
    LogicalType.FLOAT: _check_numbers,
    LogicalType.BOOLEAN: _check_booleans,
    LogicalType.STRING: _check_strings,
    LogicalType.DATETIME: _check_datetimes,
}


def validate(df: pd.DataFrame, contract: Contract) -> ValidationResult:
    """Check ``df`` against ``contract``; every violation by row and column.

    Rules: ``missing_column`` (a required column is absent; error), ``extra_column`` (not in
    the contract; warning), ``type`` (e.g. text in a number column; error),
    ``unparseable_datetime`` (error), ``missing_value`` (in a column never missing in
    training; per ``on_missing``), ``unknown_category`` (per ``on_unknown``),
    ``out_of_range`` (per ``on_out_of_range``), ``not_integer`` (a fraction in a column of
    whole numbers; warning). The target column is checked when present, never required.
    Rows are named by the frame's index label.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(
            f"validate() needs a pandas DataFrame, got {type(df).__name__}; read the data "
            f"with mlwright.load(...) first."
        )
    if not isinstance(contract, Contract):
        raise ConfigError(
            f"validate() needs a Contract, got {type(contract).__name__}; use "
            f"Contract.load(path) or learn_contract(df)."
        )
    out = _Collector()
    names = [str(c) for c in df.columns]
    for spec in contract.columns:
        if spec.name not in names:
            if spec.required:
                what = f"{spec.kind.value}, type {spec.dtype.value}"
                out.column_level(
                    spec.name, "missing_column", Severity.ERROR, f"a column ({what})",
                    f"Column {spec.name!r} is missing: the contract expects it ({what}). "
                    f"Add it, or re-learn the contract without it.",
                )
            continue
        position = names.index(spec.name)
        col = df.iloc[:, position].rename(spec.name)
        missing = col.isna().to_numpy()
        if not spec.nullable:
            out.rows(col, missing, "missing_value", spec.on_missing, "a value",
                     rules.MESSAGES["missing_value"])
        _CHECKS[spec.dtype](col, ~missing, spec, out)
    known = set(contract.names)
    # A CSV header that repeats "x" is read as x, x.1 (the reader notes it): one duplicate.
    renamed: dict[str, str] = {k: v for k, v in df.attrs.get(REPEATED_COLUMNS, {}).items()
                               if k in names and k not in known}
    for name in names:
        if name not in known and name not in renamed:
            out.column_level(
                name, "extra_column", Severity.WARNING, "no such column",
                f"Column {name!r} is not in the contract; it will be ignored.",
            )
    header = [renamed.get(n, n) for n in names]
    for name in sorted({n for n in header if header.count(n) > 1}):
        read_as = [n for n in names if renamed.get(n) == name]
        also = (f" in the header (the repeats read as {', '.join(map(repr, read_as))})"
                if read_as else "")
        out.column_level(
            name, "duplicate_column", Severity.ERROR, "each column once",
            f"Column {name!r} appears {header.count(name)} times{also}; only the first was "
            f"checked. Rename or drop the duplicates.",
        )
    return out.result(len(df))
