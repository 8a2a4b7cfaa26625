"""The contract's parsing rules: the one place that says what a value of each type is.

Four paths read values against a contract and must agree on every one of them: the batch
validator (:mod:`.validate`, pandas), the serving validator (``serve.records``, plain Python
per record), preprocessing (``prep.table`` and its compiled form ``prep.fast``) and the
monitor's reference (``monitor.reference.category_key``). Each takes its rules from here: the
scalar parsers (``to_boolean``, ``to_number``, ``to_datetime``) for one value at a time, and
the column parsers (``parse_booleans``, ``parse_numbers``, ``parse_datetimes``), which give
the same answer for every value of a pandas column. ``tests/data/test_contract_paths.py``
runs one awkward table through all four.

Missing: None, NaN and NaT (a float NaN is how pandas writes a missing number).

Booleans: ``True``/``False``; the numbers 1 and 0 (SQLite and CSVs store booleans so); the
text tokens below, case-insensitive and stripped of surrounding whitespace. The tokens are
the union of what the four paths accepted when each had its own set (prep read ``t``/``y``,
serving read ``yes``; the batch validator neither): a narrower set would refuse, at the
validator, values that the model's own preprocessing reads, and every token here has one
obvious meaning. ``1.0``/``0.0`` are how a 0/1 column with a missing value prints. Any other
value (``2``, ``""``, ``maybe``) is not a boolean.

Numbers: ints and floats (not bools); text in ASCII decimal notation (``42``, ``-1.5``,
``1e5``, ``.5``) or ``inf``/``infinity`` with an optional sign, stripped, read as a double
(digits beyond a double's range read as ±inf). ±inf is a number outside every training
range (the range is that of the finite training values): the column's ``on_out_of_range``
policy decides, as for any value outside it. Not numbers: ``nan`` written as text, ``""``,
thousands separators, ``1_000`` and non-ASCII digits (Python's ``float`` reads those two;
pandas does not, so neither do we).

Date/times: datetime objects, and text in the ISO 8601 forms ``YYYY-MM-DD``, optionally
followed by ``T`` or a space, ``HH:MM``, optional ``:SS`` with up to 9 fraction digits, and
an optional zone ``Z``/``±HH``/``±HHMM``/``±HH:MM``. Values are compared in UTC; a value
without a zone is taken to be UTC. Other spellings (``08/11/2016``: 8 November or 11
August?) are not dates. Dates must lie within the years 1678-2261, the range of the
nanosecond timestamps that pandas, the contract statistics and the model's date features use.
A value that is neither text nor a date (a number, a boolean, a list) is a type error, text
that reads as no date an ``unparseable_datetime`` error.

Text (string columns): compared exactly as given: no stripping, no case folding, no
Unicode normalisation (the model's encoders see exactly these strings). Numbers and
booleans given for text are read as their ``str()`` (:func:`to_string`); a list, an object
(JSON, or a Parquet list or struct column) or a date is not text: a type error.

Labels (feedback for the target, :func:`to_label`): a class is read by the rules of the
classes' type, and the stored label is the class itself: ``10.0`` and ``"10"`` are the
integer class ``10``; ``"yes"``, ``1`` and ``true`` are ``True`` for a boolean target; a
value that reads as no class is refused. A regression label is a finite number (text
included) within :data:`LABEL_RANGE_FACTOR` training ranges of the training targets: a
label of ``1e308`` (or one beyond a double) is a typo or an attack, and one such label
overflows every squared-error metric of the window it falls in and of the retrain it feeds.
"""

from __future__ import annotations

import math
import re
import reprlib
import sys
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "EARLIEST",
    "EXPECTED",
    "FALSE_TOKENS",
    "ISO_DATETIME",
    "LABEL_RANGE_FACTOR",
    "LATEST",
    "MESSAGES",
    "NUMBER",
    "TRUE_TOKENS",
    "expected",
    "is_missing",
    "label_bounds",
    "message",
    "parse_booleans",
    "parse_datetimes",
    "parse_numbers",
    "parse_strings",
    "show",
    "to_boolean",
    "to_datetime",
    "to_label",
    "to_number",
    "to_string",
    "to_utc",
]

TRUE_TOKENS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_TOKENS = frozenset({"false", "f", "no", "n", "0", "0.0"})

#: A number written as text (already stripped); ASCII digits only.
NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:inf|infinity))",
                    re.ASCII)

#: The ISO 8601 forms whose meaning is certain both to pandas (its ISO fast path) and to
#: ``datetime.fromisoformat``: they give the same instant for each.
ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?", re.ASCII)

_DIGITS = bytes.maketrans(b"0123456789", b"dddddddddd")
#: Every string ISO_DATETIME matches, with its digits written "d" (a set: one hash lookup).
_SHAPES = frozenset(shape.encode() for shape in [
    "dddd-dd-dd", *(
        f"dddd-dd-dd{sep}{time}{zone}"
        for sep in ("T", " ")
        for time in ("dd:dd", "dd:dd:dd", *(f"dd:dd:dd.{'d' * n}" for n in range(1, 10)))
        for zone in ("", "Z", *(f"{sign}{z}" for sign in "+-" for z in ("dd", "dddd", "dd:dd"))))
])

#: Dates are valid from EARLIEST (inclusive) to LATEST (exclusive): whole days inside the
#: range of nanosecond timestamps (1677-09-21 to 2262-04-11).
EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)

#: What a value of each logical type must be, as a violation's ``expected`` says.
EXPECTED = {
    "boolean": "a boolean (true/false, yes/no, t/f, y/n or 1/0)",
    "number": "a number",
    "string": "a string",
    "datetime": "an ISO 8601 date/time",
}
#: The messages of the type-level rules (``{value}``: the value as :func:`show` quotes it).
MESSAGES = {
    "not_boolean": "expected a boolean (true/false, yes/no, t/f, y/n or 1/0), got {value}.",
    "not_number": "expected a number, got {value}.",
    "date_not_number": "expected a number, got the date/time {value}.",
    "not_string": "expected a string, got {value}.",
    "not_datetime": "expected a date/time such as '2016-11-08T14:30:00Z', got {value}.",
    "unparseable_datetime": "could not read {value} as a date/time; expected ISO 8601 such "
                            "as '2016-11-08T14:30:00Z', within the years 1678-2261.",
    "not_integer": "expected a whole number, got {value}.",
    "missing_value": "missing value, but the column was never missing in training.",
    "missing_field": "required field is missing (type {dtype}).",
}


def message(key: str, value: Any = None, **fields: Any) -> str:
    """The text of a violation: ``message("not_number", "abc")``."""
    return MESSAGES[key].format(value=show(value), **fields)


def expected(dtype: str) -> str:
    """What a value of logical type ``dtype`` must be, as said in a violation."""
    return EXPECTED[dtype]


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel = 3  # a list nested 1,000 deep must not reach the recursion limit
    short.maxlist = short.maxtuple = short.maxset = short.maxdict = 6
    short.maxstring = short.maxother = 40
    return short


_SHORT = _short_repr()


def show(value: Any) -> str:
    """A value as a message quotes it: its repr, cut at 80 characters. Containers are
    written a few items and levels deep (a request's value may be nested thousands deep or
    hold a million items); an integer too long for repr is named by its digits."""
    value = value.item() if isinstance(value, np.generic) else value
    try:
        text = _SHORT.repr(value) if isinstance(value, dict | list | tuple | set) else repr(value)
    except ValueError:  # int beyond sys.get_int_max_str_digits()
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    return text if len(text) <= 80 else text[:77] + "..."


def is_missing(value: Any) -> bool:
    """None, NaN or NaT."""
    return value is None or value is pd.NaT or (isinstance(value, float) and value != value)


# -- one value at a time (plain Python: the serving path's per-request cost) -------------------


def to_boolean(value: Any) -> bool | None:
    """The boolean ``value`` stands for, or None when it is not one (missing is not)."""
    kind = type(value)  # exact types first: this runs per value of a request
    if kind is bool:
        return value
    if kind is str:
        token = value.strip().lower()
        return True if token in TRUE_TOKENS else False if token in FALSE_TOKENS else None
    if kind is int or kind is float:
        return bool(value) if value in (0, 1) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        return to_boolean(str(value))
    return None


def to_number(value: Any) -> int | float | None:
    """The number ``value`` stands for (ints stay ints, text becomes a float), or None when
    it is not one. NaN is missing, not a number: check :func:`is_missing` first. An int
    beyond a double's range is ±inf, as its digits written as text are (no model reads it)."""
    kind = type(value)  # exact types first: this runs per value of a request
    if kind is float:
        return value
    if kind is int:
        return value if -_DOUBLE <= value <= _DOUBLE else math.inf if value > 0 else -math.inf
    if kind is str:
        return _text_number(value)
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, int | float):
        return to_number(float(value) if isinstance(value, float) else int(value))
    if isinstance(value, str):
        return to_number(str(value))
    return None


def to_string(value: Any) -> str | None:
    """The text ``value`` stands for in a string column (numbers and booleans as their
    ``str()``), or None when it is not text: a list, an object, a date (missing is not)."""
    kind = type(value)  # exact types first: this runs per value of a request
    if kind is str:
        return value
    if kind is bool or kind is int or kind is float:
        return str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return str(value.item())
    if isinstance(value, bool | int | float):
        return str(value)
    return None


_DOUBLE = sys.float_info.max


def _text_number(value: str) -> float | None:
    # NUMBER's language, tested without the regex: what float() reads, less the three
    # things it reads and NUMBER does not (NaN, "1_000", non-ASCII digits and spaces).
    text = value.strip()
    try:
        number = float(text)  # beyond a double's range: ±inf
    except ValueError:
        return None
    if number != number or "_" in text or not text.isascii():
        return None
    return number


def to_datetime(value: Any) -> datetime | None:
    """``value`` as an aware UTC datetime, or None when it is not a date/time of the rules
    (unparseable text, or outside the years 1678-2261)."""
    if type(value) is str:  # the usual case first: JSON has no date type
        value = value.strip()
        # ISO_DATETIME's test (see _SHAPES), at a quarter of the regex's cost.
        if not value.isascii() or value.encode().translate(_DIGITS) not in _SHAPES:
            return None
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:  # 2016-02-30, 25:00
            return None
    elif isinstance(value, datetime):  # pandas Timestamps too: Parquet uploads keep their type
        stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    elif isinstance(value, date):  # a Parquet date column
        stamp = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        # ISO_DATETIME's test (see _SHAPES), at a quarter of the regex's cost.
        if not text.isascii() or text.encode().translate(_DIGITS) not in _SHAPES:
            return None
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:  # 2016-02-30, 25:00
            return None
    else:
        return None
    try:
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 has no UTC datetime
        return None
    return stamp if EARLIEST <= stamp < LATEST else None


#: A regression label may lie up to this many training ranges (max - min of the training
#: targets) below the minimum or above the maximum. Generous on purpose: it refuses only
#: values no real target takes (1e308 for a price), never a genuine shift of the target.
LABEL_RANGE_FACTOR = 1000.0


def label_bounds(low: float | None, high: float | None) -> tuple[float, float]:
    """The range a regression label must lie in, from the training targets' ``low`` and
    ``high`` (:data:`LABEL_RANGE_FACTOR` ranges each side; a constant target's range is
    taken as ``max(|value|, 1)``); (-inf, inf) when the range is unknown."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return -math.inf, math.inf
    width = high - low if high > low else max(abs(high), 1.0)
    return low - LABEL_RANGE_FACTOR * width, high + LABEL_RANGE_FACTOR * width


def to_label(value: Any, *, classes: list[Any] | None, low: float | None = None,
             high: float | None = None) -> tuple[Any, str | None]:
    """``(label, None)``: the canonical label ``value`` stands for, or ``(None, why)``.

    ``classes``: the target's classes (None: regression, where ``low``/``high`` are the
    training targets' range; see :func:`label_bounds`). A class is read by the rules of its
    type: booleans by :func:`to_boolean`, numbers by :func:`to_number` (``10.0`` is class
    ``10``), text exactly (numbers given for text are read as their ``str()``). The label
    returned is the class itself, so every reader of stored labels sees one form."""
    if isinstance(value, dict | list) or is_missing(value):
        return None, f"expected a label, got {show(value)}."
    if classes is None:
        number = None if isinstance(value, bool | np.bool_) else to_number(value)
        if number is None:
            return None, f"expected a number (regression target), got {show(value)}."
        try:
            finite = math.isfinite(number)
        except OverflowError:  # an int beyond a double
            finite = False
        if not finite:
            return None, f"expected a finite number, got {show(value)}."
        lo, hi = label_bounds(low, high)
        if not lo <= number <= hi:
            return None, (f"{show(value)} is far outside the training targets' range "
                          f"[{low:.6g}, {high:.6g}] (allowed: [{lo:.6g}, {hi:.6g}], "
                          f"{LABEL_RANGE_FACTOR:g} ranges each side).")
        return number, None
    found: Any = None
    if classes and all(isinstance(c, bool) for c in classes):
        found = to_boolean(value)
    elif classes and all(isinstance(c, int | float) and not isinstance(c, bool)
                         for c in classes):
        found = None if isinstance(value, bool | np.bool_) else to_number(value)
    elif isinstance(value, str):
        found = value
    elif isinstance(value, bool | int | float | np.generic):
        found = str(value.item() if isinstance(value, np.generic) else value)
    for c in classes:  # the class itself (10, not 10.0): one stored form
        if found is not None and isinstance(found, bool) == isinstance(c, bool) and found == c:
            return c, None
    return None, f"{show(value)} is not a class of this model; expected one of {classes}."


# -- whole columns (pandas: the batch validator and prep) --------------------------------------


def _per_distinct(col: pd.Series, parse: Any, missing: Any) -> list[Any]:
    """``parse`` of each value, computed once per distinct value (columns repeat a lot)."""
    try:
        codes, uniques = pd.factorize(col.astype(object), use_na_sentinel=True)
    except TypeError:  # unhashable values (a Parquet list or struct column): each one
        return [missing if is_missing(v) else parse(v) for v in col.astype(object)]
    parsed = [parse(v) for v in uniques]
    parsed.append(missing)  # code -1: missing
    return [parsed[c] for c in codes]


def parse_booleans(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(value, parsed) arrays: each entry's boolean value and whether it is one. Missing
    entries are not parsed (test them with ``col.isna()``)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        present = col.notna().to_numpy()
        return col.to_numpy(dtype=bool, na_value=False), present
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_complex_dtype(
            col.dtype):
        numbers = col.to_numpy(dtype=np.float64, na_value=np.nan)
        return numbers == 1.0, np.isin(numbers, (0.0, 1.0))
    values = _per_distinct(col, to_boolean, None)
    parsed = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    return np.fromiter((v is True for v in values), dtype=bool, count=len(values)), parsed


def parse_numbers(col: pd.Series, *, bools_as_numbers: bool = False) -> np.ndarray:
    """Float values of a column; NaN where an entry is missing or not a number.

    ``bools_as_numbers``: read True/False as 1/0. Prep does (a model reads what it is given;
    the validators have refused booleans in number columns before it sees them).
    """
    if pd.api.types.is_bool_dtype(col.dtype) and bools_as_numbers:
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(col.dtype) and not (
            pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_complex_dtype(col.dtype)):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_datetime64_any_dtype(
            col.dtype):
        return np.full(len(col), np.nan)

    def number(value: Any) -> float:
        if bools_as_numbers and isinstance(value, bool | np.bool_):
            return float(value)
        parsed = to_number(value)
        if parsed is None:
            return math.nan
        try:
            return float(parsed)
        except OverflowError:  # an int beyond a double's range
            return math.inf if parsed > 0 else -math.inf

    return np.asarray(_per_distinct(col, number, math.nan), dtype=np.float64)


def parse_strings(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(text, parsed) arrays: each entry as :func:`to_string` reads it and whether it is text
    at all. Missing entries are not parsed (test them with ``col.isna()``)."""
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:  # pandas' own text
        text = col.astype(object).to_numpy()
        return text, np.ones(len(col), dtype=bool)
    if (pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype)) \
            and not pd.api.types.is_complex_dtype(col.dtype):
        text = np.asarray(col.astype(object).map(str), dtype=object)
        return text, np.ones(len(col), dtype=bool)
    values = _per_distinct(col, to_string, None)
    parsed = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    return np.asarray(values, dtype=object), parsed


def to_utc(col: pd.Series) -> pd.Series:
    """A datetime column in UTC at nanosecond resolution (naive values are taken to be UTC)."""
    if getattr(col.dtype, "tz", None) is None:
        col = col.dt.tz_localize("UTC")
    return col.dt.tz_convert("UTC").dt.as_unit("ns")


def parse_datetimes(col: pd.Series) -> pd.Series:
    """A column as ``datetime64[ns, UTC]``; NaT where an entry is missing or not a date/time.

    Text matching :data:`ISO_DATETIME` is parsed by pandas' ISO 8601 parser in C (the same
    instants ``datetime.fromisoformat`` gives for these forms); other objects (datetimes,
    dates) go through :func:`to_datetime`.
    """
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        stamps = to_utc(col.astype(col.dtype))
        low, high = pd.Timestamp(EARLIEST), pd.Timestamp(LATEST)
        return stamps.where((stamps >= low) & (stamps < high))
    index = col.index
    values = col.astype(object).reset_index(drop=True)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    is_text = values.map(type).eq(str).to_numpy()
    if is_text.any():
        text = values[is_text].str.strip()
        iso = text.str.fullmatch(ISO_DATETIME).fillna(False).to_numpy(dtype=bool)
        if iso.any():
            parsed = pd.to_datetime(text[iso], errors="coerce", utc=True, format="ISO8601")
            low, high = pd.Timestamp(EARLIEST), pd.Timestamp(LATEST)
            parsed = parsed.where((parsed >= low) & (parsed < high))
            out[parsed.index] = parsed.dt.as_unit("ns")
    others = ~is_text & values.notna().to_numpy()
    if others.any():
        stamps = [to_datetime(v) for v in values[others]]
        out[values.index[others]] = pd.Series(
            [pd.NaT if s is None else pd.Timestamp(s) for s in stamps],
            index=values.index[others], dtype="datetime64[ns, UTC]")
    out.index = index
    return out
