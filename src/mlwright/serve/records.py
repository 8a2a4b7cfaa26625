"""Per-record validation of JSON requests against the data contract, without pandas.

``data.contract.validate`` is vectorised over a DataFrame; building one costs about a
millisecond, more than the whole budget of a one-row request. Here each column's checks are
compiled once into a small function that takes one JSON value and returns the value the
model gets (or raises), so a record costs a few microseconds per column.

What a value of each type is (booleans, numbers, ISO dates) and the messages come from
``data/contract/rules.py``, shared with the batch validator. Wrong types, unparseable dates
and missing required fields are always errors; a missing value in a column never missing in
training, an unknown category and a number outside the training range follow the column's
policy (``reject`` an error, ``warn`` a warning, ``impute`` a warning and the training median
or mode in its place, ``ignore`` nothing).
"""

from __future__ import annotations

import contextlib
import heapq
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from mlwright.data.contract import ColumnSpec, Contract, LogicalType, Policy, rules

__all__ = ["Errors", "Issue", "RecordError", "RecordValidator"]

_MAX_SHOWN = 8
_DOUBLE = sys.float_info.max  # a number column's values lie within ±_DOUBLE (or are ±inf)
_MISSING = object()  # a field absent from the record (not the same as null)


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule in one record of a request."""

    record: int
    field: str
    rule: str
    severity: str  # "error" | "warning"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "field": self.field, "rule": self.rule,
                "severity": self.severity, "message": self.message}


class Errors(list[Issue]):
    """The errors of a request, capped at the validator's ``max_errors``; ``records`` counts
    every record with an error, those past the cap too ("N of M records break..."), and
    ``listed`` the records whose errors the list holds (the first ones with an error)."""

    def __init__(self, issues: Iterable[Issue] = (), records: int = 0,
                 listed: int | None = None) -> None:
        super().__init__(issues)
        self.records = records
        self.listed = len({i.record for i in self}) if listed is None else listed

    def describe(self, total: int, noun: str = "records") -> str:
        """The sentence of a 422: how many of ``total`` records fail, and what is listed."""
        text = f"{self.records:,} of {total:,} {noun} break the data contract"
        unlisted = self.records - self.listed
        if unlisted > 0:
            return (f"{text}; 'errors' lists the {len(self):,} errors of the first "
                    f"{self.listed:,} of them; the errors of the other {unlisted:,} "
                    f"{noun} are not listed")
        return text


class RecordError(Exception):
    """Raised by a column check: the value breaks a rule whose policy is reject.

    A type error's text (``template``: a key of ``rules.MESSAGES``) is written only when
    read: counting the failed records of a large refused request never needs it."""

    def __init__(self, rule: str, message: str | None = None, *, template: str = "",
                 value: Any = None) -> None:
        super().__init__(rule)
        self.rule = rule
        self._message = message
        self._template = template
        self._value = value

    @property
    def message(self) -> str:
        if self._message is None:
            self._message = rules.message(self._template, self._value)
        return self._message

    def __str__(self) -> str:
        return self.message


def _listing(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_SHOWN])
    return shown + (f" and {len(values) - _MAX_SHOWN} more" if len(values) > _MAX_SHOWN else "")


def _fill_value(spec: ColumnSpec) -> Any:
    """What ``impute`` puts in: the training median of numbers, the mode of the rest."""
    stats = spec.stats
    if spec.dtype in (LogicalType.INTEGER, LogicalType.FLOAT) and stats.numeric is not None:
        probs = stats.numeric.quantile_probs
        median = stats.numeric.quantiles[probs.index(0.5)] if 0.5 in probs else stats.numeric.mean
        return round(median) if spec.dtype is LogicalType.INTEGER else float(median)
    if stats.frequencies is not None and stats.frequencies.values:
        mode = stats.frequencies.values[0]
        if spec.dtype is LogicalType.BOOLEAN:
            return bool(mode)
        if spec.dtype is LogicalType.DATETIME and isinstance(mode, str):
            return _parse_datetime(mode)
        return mode
    if spec.dtype is LogicalType.DATETIME and stats.datetime is not None:
        return _parse_datetime(stats.datetime.quantiles[len(stats.datetime.quantiles) // 2])
    return None


def _parse_datetime(text: str) -> datetime | None:
    return rules.to_datetime(text)


# A converter returns the canonical value or raises RecordError (always an error: types).
Converter = Callable[[Any], Any]


def _to_number(value: Any) -> float | int:
    # Numbers written as text pass, as in the batch validator (CSV uploads need it).
    number = rules.to_number(value)
    if number is None:
        raise RecordError("type", template="not_number", value=value)
    return number


def _to_boolean(value: Any) -> bool:
    flag = rules.to_boolean(value)
    if flag is None:
        raise RecordError("type", template="not_boolean", value=value)
    return flag


def _to_string(value: Any) -> str:
    text = rules.to_string(value)
    if text is None:
        raise RecordError("type", template="not_string", value=value)
    return text


def _to_datetime(value: Any) -> datetime:
    stamp = rules.to_datetime(value)
    if stamp is not None:
        return stamp
    if not isinstance(value, str | date):
        raise RecordError("type", template="not_datetime", value=value)
    raise RecordError("unparseable_datetime", template="unparseable_datetime", value=value)


_CONVERTERS: dict[LogicalType, Converter] = {
    LogicalType.INTEGER: _to_number,
    LogicalType.FLOAT: _to_number,
    LogicalType.BOOLEAN: _to_boolean,
    LogicalType.STRING: _to_string,
    LogicalType.DATETIME: _to_datetime,
}


class _Column:
    """The compiled checks of one contract column."""

    __slots__ = ("allowed", "convert", "dtype", "earliest", "fill", "hi", "lo", "name",
                 "nullable", "on_missing", "on_range", "on_unknown", "range_text", "required",
                 "spec", "unknown_text")

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.dtype = spec.dtype
        self.required = spec.required
        self.nullable = spec.nullable
        self.on_missing = spec.on_missing
        self.convert = _CONVERTERS[spec.dtype]
        self.fill = _fill_value(spec)
        self.allowed: frozenset[Any] | None = None
        self.on_unknown = spec.on_unknown
        self.unknown_text = ""
        if spec.categories is not None and spec.on_unknown not in (None, Policy.IGNORE):
            if spec.dtype is LogicalType.BOOLEAN:
                self.allowed = frozenset(bool(c) for c in spec.categories)
            elif spec.dtype in (LogicalType.INTEGER, LogicalType.FLOAT):
                self.allowed = frozenset(float(c) for c in spec.categories)
            else:
                self.allowed = frozenset(str(c) for c in spec.categories)
            self.unknown_text = f"one of {_listing(list(spec.categories))}"
        self.on_range = spec.on_out_of_range
        self.lo: Any = None
        self.hi: Any = None
        self.earliest: Any = None
        self.range_text = ""
        if spec.on_out_of_range not in (None, Policy.IGNORE):
            if spec.min is not None and spec.max is not None:
                self.lo, self.hi = spec.min, spec.max
                self.range_text = f"[{spec.min:g}, {spec.max:g}]"
            elif spec.earliest is not None and spec.latest is not None:
                self.lo, self.hi = _parse_datetime(spec.earliest), _parse_datetime(spec.latest)
                self.range_text = f"[{spec.earliest}, {spec.latest}]"

    def clean_test(self) -> Callable[[Any], bool] | None:
        """A cheap test of values that ``check`` would return unchanged with no issue (the
        common case), or None when every value needs ``check`` (dates are parsed)."""
        allowed, lo, hi = self.allowed, self.lo, self.hi
        if lo is None:  # no range to keep: a double's (an int beyond it is read as ±inf)
            lo, hi = -sys.float_info.max, sys.float_info.max
        if self.dtype is LogicalType.FLOAT:
            def number(v: Any) -> bool:
                return (type(v) is float or type(v) is int) and v - v == 0 and (
                    lo <= v <= hi) and (allowed is None or v in allowed)
            return number
        if self.dtype is LogicalType.INTEGER:  # floats may need a not-integer warning
            def integer(v: Any) -> bool:
                return type(v) is int and lo <= v <= hi and (
                    allowed is None or v in allowed)
            return integer
        if self.dtype is LogicalType.STRING:
            def string(v: Any) -> bool:
                return type(v) is str and (allowed is None or v in allowed)
            return string
        if self.dtype is LogicalType.BOOLEAN:
            def boolean(v: Any) -> bool:
                return type(v) is bool and (allowed is None or v in allowed)
            return boolean
        return None

    def check_column(self, values: list[Any], test: Callable[[Any], bool] | None
                     ) -> list[int] | range:
        """Positions of ``values`` that need ``check``; the others are canonical and clean
        as they are, or were converted in place (a boolean written ``"Yes"``).

        Whole-column tests run in C (``set``, ``sum``, ``min``) where a per-value function
        call would cost ~0.3 us a value; a column failing them is tested value by value.
        """
        if test is None:
            return range(len(values))
        try:
            kinds = set(map(type, values))
            if self.dtype is LogicalType.FLOAT or self.dtype is LogicalType.INTEGER:
                numbers = {float, int} if self.dtype is LogicalType.FLOAT else {int}
                lo, hi = (-_DOUBLE, _DOUBLE) if self.lo is None else (self.lo, self.hi)
                if kinds <= numbers and math.isfinite(sum(values)) and (
                        lo <= min(values) and max(values) <= hi
                ) and (self.allowed is None or self.allowed.issuperset(values)):
                    return []
            elif kinds <= {str, bool, int, float}:  # few distinct values: check each once
                converted: dict[Any, Any] = {}
                for value in set(values):
                    scratch: list[Issue] = []
                    try:
                        out = self.check(value, 0, scratch)
                    except RecordError:
                        break
                    if scratch or (type(out) is not type(value)
                                   and self.dtype is not LogicalType.BOOLEAN):
                        break
                    converted[value] = out
                else:
                    # Mixed kinds share keys (1 == True): rebuild, so each value is the
                    # canonical one.
                    if len(kinds) > 1 or any(out is not v for v, out in converted.items()):
                        values[:] = [converted[v] for v in values]
                    return []
        except (TypeError, ValueError, OverflowError):  # unhashable or incomparable values,
            pass  # or an int beyond a double (in the sum): one by one
        return [i for i, v in enumerate(values) if not test(v)]

    def check(self, value: Any, index: int, warnings: list[Issue]) -> Any:
        """The value the model gets for this field of record ``index``, or RecordError."""
        if value is _MISSING or value is None or (isinstance(value, float) and value != value):
            if value is _MISSING and self.required:
                raise RecordError("missing_field",
                                  rules.message("missing_field", dtype=self.dtype.value))
            if self.nullable or value is _MISSING:
                return None
            return self._policy(self.on_missing, "missing_value", index, warnings,
                                rules.message("missing_value").rstrip("."), None)
        converted = self.convert(value)
        if self.dtype is LogicalType.INTEGER and isinstance(converted, float) \
                and math.isfinite(converted) and not converted.is_integer():
            warnings.append(Issue(index, self.name, "not_integer", "warning",
                                  rules.message("not_integer", value)))
        if self.allowed is not None and converted not in self.allowed:
            converted = self._policy(
                self.on_unknown, "unknown_category", index, warnings,
                f"{rules.show(value)} is not a known category; expected {self.unknown_text}",
                converted)
        if self.lo is not None and (converted < self.lo or converted > self.hi):
            converted = self._policy(
                self.on_range, "out_of_range", index, warnings,
                f"{rules.show(value)} is outside the training range {self.range_text}", converted)
        return converted

    def _policy(self, policy: Policy | None, rule: str, index: int, warnings: list[Issue],
                message: str, value: Any) -> Any:
        if policy is Policy.REJECT:
            raise RecordError(rule, message + ".")
        if policy is Policy.IMPUTE:
            warnings.append(Issue(index, self.name, rule, "warning",
                                  f"{message}; imputed with {self.fill!r}."))
            return self.fill
        if policy is Policy.WARN:
            warnings.append(Issue(index, self.name, rule, "warning", message + "."))
        return value


class RecordValidator:
    """Checks JSON records against a contract's feature columns, one record at a time.

    ``validate(records)`` returns the records the model gets (every feature in training
    order, canonical Python values, ``None`` for missing) and the warnings of the records
    that pass; the errors are listed up to ``max_errors`` and every failed record counted.

    Refusing costs little: the first pass only finds out which records fail (a record's
    later fields are skipped once one fails, and a value that failed is not checked again
    in that column: ``[{}, {}, ...]`` costs one check per column); the second pass lists
    the errors of the first failed records only, field by field.
    """

    def __init__(self, contract: Contract, *, max_errors: int = 50) -> None:
        self.contract = contract
        self.max_errors = max_errors
        self.columns = [_Column(contract.column(name)) for name in contract.feature_names]
        self.names = [c.name for c in self.columns]
        self._tests = [c.clean_test() for c in self.columns]
        self._known = set(contract.names)
        # A record's fields as a tuple in contract order (KeyError when one is absent).
        self._fields: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*self.names) if len(self.names) > 1
            else lambda record: tuple(record[name] for name in self.names))

    # From this many records on, checks run column by column: one cheap test per value, and
    # the full check only for values that fail it (about 2x faster on 100-record requests).
    columnwise_from = 8
    # Names of fields outside the contract listed one warning each; the rest in one more.
    max_extra_shown = 20

    def validate(self, records: list[Any]) -> tuple[list[dict[str, Any]], list[Issue], Errors]:
        """(clean records, warnings, errors); records with errors are left out of the first,
        and their warnings too. ``errors`` is capped at ``max_errors``; ``errors.records``
        counts every failed record."""
        if len(records) >= self.columnwise_from and all(type(r) is dict for r in records):
            clean, warnings, failed, extra = self._validate_columns(records)
        else:
            clean, warnings, failed, extra = self._validate_records(records)
        if failed:
            warnings = [w for w in warnings if w.record not in failed]
        warnings.extend(self._extra_warnings(extra))
        if not failed:
            return clean, warnings, Errors()
        errors, listed = self._list_errors(records, sorted(failed))
        return clean, warnings, Errors(errors, len(failed), listed)

    def _validate_columns(self, records: list[dict[str, Any]]
                          ) -> tuple[list[dict[str, Any]], list[Issue], set[int], set[Any]]:
        warnings: list[Issue] = []
        failed: set[int] = set()
        columns_out = []
        missing = _MISSING
        try:  # every field present (the usual request): one C call per record
            given = [list(c) for c in zip(*map(self._fields, records), strict=True)]
        except (KeyError, TypeError):
            given = [[r.get(name, missing) for r in records] for name in self.names]
        alive: list[int] | None = None  # the records not failed yet, when some failed
        for position, col in enumerate(self.columns):
            values = given[position]
            if alive is None:
                todo: Iterable[int] = col.check_column(values, self._tests[position])
            else:  # only the records still alive are checked
                if not alive:
                    break  # every record failed: the count is complete
                sub = [values[i] for i in alive]
                todo = [alive[j] for j in col.check_column(sub, self._tests[position])]
                for i, value in zip(alive, sub, strict=True):
                    values[i] = value  # check_column converts in place
            if todo:
                before = len(failed)
                refused: set[tuple[type, Any]] = set()  # values that failed in this column
                for i in todo:
                    value = values[i]
                    if refused:  # looked up only once a value failed: the valid path pays 0
                        try:
                            if (type(value), value) in refused:
                                failed.add(i)
                                continue
                        except TypeError:  # unhashable (a list): checked every time
                            pass
                    try:
                        values[i] = col.check(value, i, warnings)
                    except RecordError:
                        failed.add(i)
                        with contextlib.suppress(TypeError):
                            refused.add((type(value), value))
                if len(failed) != before:
                    alive = [i for i in (range(len(records)) if alive is None else alive)
                             if i not in failed]
            columns_out.append(values)
        if len(warnings) > 1:
            order = {name: k for k, name in enumerate(self.names)}
            warnings.sort(key=lambda w: (w.record, order.get(w.field, -1)))
        names = self.names
        clean = [] if len(failed) == len(records) else [
            dict(zip(names, row, strict=True))
            for i, row in enumerate(zip(*columns_out, strict=True)) if i not in failed]
        n_columns = len(self.columns)
        known = self._known
        extra: set[Any] = set()
        for r in records:
            if len(r) != n_columns:
                extra.update(r.keys() - known)  # set arithmetic in C: a record may be wide
        return clean, warnings, failed, extra

    def _validate_records(self, records: list[Any]
                          ) -> tuple[list[dict[str, Any]], list[Issue], set[int], set[Any]]:
        clean: list[dict[str, Any]] = []
        warnings: list[Issue] = []
        failed: set[int] = set()
        extra: set[Any] = set()
        columns = self.columns
        missing = _MISSING
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                failed.add(index)
                continue
            out: dict[str, Any] = {}
            get = record.get
            try:
                for col in columns:
                    out[col.name] = col.check(get(col.name, missing), index, warnings)
            except RecordError:  # counted here; listed by _list_errors
                failed.add(index)
                continue
            if len(record) != len(columns):
                extra.update(record.keys() - out.keys())
            clean.append(out)
        return clean, warnings, failed, extra - self._known

    def _list_errors(self, records: list[Any], failed: list[int]) -> tuple[list[Issue], int]:
        """The errors of the first failed records, every field of each, up to the cap; and
        how many records they cover."""
        errors: list[Issue] = []
        cap = self.max_errors
        missing = _MISSING
        scratch: list[Issue] = []  # warnings of refused records are not reported
        listed = 0
        for index in failed:
            if len(errors) >= cap:
                break
            listed += 1
            record = records[index]
            if not isinstance(record, dict):
                errors.append(Issue(index, "", "type", "error",
                                    f"record {index} must be a JSON object of field: "
                                    f"value, got {type(record).__name__}."))
                continue
            get = record.get
            for col in self.columns:
                try:
                    col.check(get(col.name, missing), index, scratch)
                except RecordError as exc:
                    errors.append(Issue(index, col.name, exc.rule, "error", exc.message))
            scratch.clear()
        return errors[:cap], listed

    def _extra_warnings(self, extra: set[Any]) -> list[Issue]:
        """One warning per field outside the contract (the first few names, sorted)."""
        if not extra:
            return []
        shown = self.max_extra_shown
        # The first few in sorted order without sorting them all (650,000 fields: 1 s).
        names = heapq.nsmallest(shown, map(str, extra))
        out = [Issue(-1, name, "extra_field", "warning",
                     f"field {name!r} is not in the contract; it was ignored.")
               for name in names]
        if len(extra) > shown:
            out.append(Issue(-1, "", "extra_field", "warning",
                             f"{len(extra) - shown:,} more fields not in the contract (after "
                             f"{names[-1]!r} in sorted order) were ignored."))
        return out
