"""A content hash of a table, for lineage: which data trained, validated or monitored a model.

``fingerprint(df)`` returns ``"sha256:<64 hex digits>"``. Two tables get the same
fingerprint exactly when they hold the same multiset of rows under the same column names,
after every value is put in one canonical form:

* **numbers**: by value, whatever the storage. ``3``, ``3.0`` (an integer column that a CSV
  reader stored as float because of a gap), ``np.int8(3)`` and a nullable ``Int64`` 3 are one
  value; ``-0.0`` is ``0.0``; a whole number is hashed as the exact 64-bit integer, any other
  float by its IEEE-754 bits (so large integer ids never collide through float rounding).
* **booleans** are the numbers 1 and 0: SQLite and many warehouses have no boolean type and
  store them as 0/1 integers, so a boolean column and its 0/1 copy are the same content.
* **datetimes**: nanoseconds since the epoch in UTC; zone-aware values are converted, naive
  values are taken to be UTC (SQLite keeps timestamps without their zone).
* **text**: the UTF-8 bytes of the string, hashed with SipHash-2-4 (pandas' ``hash_array``);
  categorical and pandas ``str`` columns are text too. Other Python objects use ``str(value)``.
* **missing**: ``None``, ``NaN``, ``NaT`` and ``pd.NA`` are one and the same value.

Each value's hash also encodes which of these domains it belongs to, so the text ``"1"`` and
the number ``1`` differ. Per row, the value hashes are combined in the order of the sorted
column names; the row hashes are sorted and fed, with a header naming the algorithm version,
the row count and the sorted column names, to SHA-256.

What does **not** change the fingerprint: row order, column order, the file format or
database the table was read from, integer-vs-float storage of whole numbers, boolean-vs-0/1
storage, the resolution or zone of datetimes, categorical-vs-text storage, the DataFrame's
index. What **does**: any changed, added or removed value (including a value becoming
missing), a duplicated or dropped row (row multiplicity counts), a renamed, added or
removed column, values moved between columns, text ``"1"`` replacing the number ``1``.

The function hashes the frame as given: :func:`mlwright.data.load` normalises column types
so that the same table read from CSV, Parquet or SQL gets the same fingerprint; for a frame
built elsewhere, pass it through :func:`mlwright.data.normalize_frame` first if its text
columns may hold numbers or dates. Row hashes are 64-bit, so two *different* rows collide
with probability about n^2 / 2^65 (below 1e-7 for a million rows); the fingerprint is for
lineage, not for security.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json

import numpy as np
import pandas as pd

from mlwright.exceptions import ConfigError

__all__ = ["ALGORITHM", "fingerprint", "fingerprint_rows", "row_hashes"]

#: Part of the hashed header: changes whenever the canonical form or combination changes.
ALGORITHM = "mlwright.fingerprint/1"

# Domain tags keep values of different kinds apart (the number 1 is not the text "1").
_MISSING = np.uint64(0x6D6973_73696E67)
_INT = np.uint64(0x9E3779B97F4A7C15)
_FLOAT = np.uint64(0xC2B2AE3D27D4EB4F)
_DATETIME = np.uint64(0x165667B19E3779F9)
_TIMEDELTA = np.uint64(0x27D4EB2F165667C5)
_TEXT = np.uint64(0x85EBCA77C2B2AE63)
_ROW_SEED = np.uint64(0x243F6A8885A308D3)
_ROW_MULT = np.uint64(0x100000001B3)
_HASH_KEY = "mlwright-fp-v1.."  # 16 bytes, SipHash key for text

_INT64_LIMIT = 2.0**63


def _mix_inplace(v: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array, in place: every input bit reaches every output
    bit (arithmetic wraps mod 2^64)."""
    v ^= v >> np.uint64(30)
    v *= np.uint64(0xBF58476D1CE4E5B9)
    v ^= v >> np.uint64(27)
    v *= np.uint64(0x94D049BB133111EB)
    v ^= v >> np.uint64(31)
    return v


def _mix(values: np.ndarray) -> np.ndarray:
    return _mix_inplace(values.astype(np.uint64, copy=True))


def _tagged(payload: np.ndarray, tag: np.uint64) -> np.ndarray:
    v = _mix(payload)
    v ^= tag
    return _mix_inplace(v)


def _number_hashes(values: np.ndarray) -> np.ndarray:
    """Hashes of float64 values without NaN: whole numbers as exact int64, others by bits."""
    out = np.empty(len(values), dtype=np.uint64)
    with np.errstate(invalid="ignore"):
        whole = (
            np.isfinite(values)
            & (np.floor(values) == values)
            & (np.abs(values) < _INT64_LIMIT)
        )
    out[whole] = _tagged(values[whole].astype(np.int64).view(np.uint64), _INT)
    rest = values[~whole]
    out[~whole] = _tagged(rest.view(np.uint64), _FLOAT)
    return out


def _integer_hashes(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_unsigned_integer_dtype(col.dtype):
        values = col.to_numpy(dtype=np.uint64)
        if values.size and values.max() >= np.uint64(2**63):
            # Beyond int64: no float or signed storage can hold these exactly anyway.
            return _tagged(values, _FLOAT ^ _INT)
        return _tagged(values.astype(np.int64).view(np.uint64), _INT)
    return _tagged(col.to_numpy(dtype=np.int64).view(np.uint64), _INT)


def _repetitive(values: np.ndarray) -> bool:
    """Whether values repeat enough that hashing each distinct one once pays off.

    Only speed depends on the answer, never the result; a sample of the column decides
    (hashing every value directly is about 5x faster on free text and ids).
    """
    head = values[:10_000]
    try:
        return len(set(head)) < 0.5 * len(head)
    except TypeError:  # unhashable values (lists, dicts)
        return False


def _text_hashes(values: np.ndarray) -> np.ndarray:
    try:
        hashed = pd.util.hash_array(
            values, encoding="utf8", hash_key=_HASH_KEY, categorize=_repetitive(values)
        )
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8: hash their escaped form
        safe = np.array(
            [v.encode("utf-8", "backslashreplace").decode("utf-8") for v in values], dtype=object
        )
        hashed = pd.util.hash_array(safe, encoding="utf8", hash_key=_HASH_KEY)
    return _mix(hashed ^ _TEXT)


def _utc_nanoseconds(col: pd.Series) -> np.ndarray:
    if getattr(col.dtype, "tz", None) is not None:
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    return col.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)


def _scalar_number_hash(value: object) -> np.uint64 | None:
    """The hash of one Python/NumPy number (bool, int, float, Decimal), or None if not one."""
    if isinstance(value, bool | np.bool_):
        value = int(value)
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == value.to_integral():
        value = int(value)
    if isinstance(value, int | np.integer):
        as_int = int(value)
        if -(2**63) <= as_int < 2**63:  # exact, even beyond 2^53 where float() would round
            return _tagged(np.array([as_int], dtype=np.int64).view(np.uint64), _INT)[0]
        value = float(as_int)
    if isinstance(value, float | np.floating | decimal.Decimal):
        return _number_hashes(np.array([float(value)], dtype=np.float64))[0]
    return None


def _object_hashes(values: np.ndarray) -> np.ndarray:
    """Hashes of non-missing Python objects of any mix of types (the slow, rare path)."""
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return _text_hashes(values)
    out = np.empty(len(values), dtype=np.uint64)
    text_at: list[int] = []
    text: list[str] = []
    for i, value in enumerate(values):
        if isinstance(value, str):
            text_at.append(i)
            text.append(value)
        elif (number := _scalar_number_hash(value)) is not None:
            out[i] = number
        elif isinstance(value, datetime.date | np.datetime64):
            stamp = pd.Series(pd.to_datetime([value], utc=True))
            out[i] = _tagged(_utc_nanoseconds(stamp).view(np.uint64), _DATETIME)[0]
        else:
            text_at.append(i)
            text.append(
                value.decode("utf-8", "backslashreplace") if isinstance(value, bytes)
                else str(value)
            )
    if text_at:
        out[np.array(text_at)] = _text_hashes(np.array(text, dtype=object))
    return out


def _label_hashes(col: pd.Series) -> np.ndarray:
    """Text, categorical and object columns; repeated values are hashed once each."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        uniques = col.cat.categories.to_numpy(dtype=object)
    else:
        values = col.to_numpy(dtype=object)
        if not _repetitive(values):
            missing = pd.isna(values)
            out = np.full(len(values), _MISSING, dtype=np.uint64)
            if not missing.all():
                out[~missing] = _object_hashes(values[~missing])
            return out
        # Values equal in Python (1, 1.0, True) share a code, and they are one canonical
        # value too; every kind of missing gets the code -1.
        codes, uniques = pd.factorize(values)
    out = np.full(len(codes), _MISSING, dtype=np.uint64)
    present = codes >= 0
    if len(uniques):
        out[present] = _object_hashes(np.asarray(uniques, dtype=object))[codes[present]]
    return out


def _column_hashes(col: pd.Series) -> np.ndarray:
    """One uint64 per row: the canonical value's hash (see the module docstring)."""
    dtype = col.dtype
    if not (
        pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_integer_dtype(dtype)
        or pd.api.types.is_float_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    ) or isinstance(dtype, pd.CategoricalDtype):
        return _label_hashes(col)
    missing = col.isna().to_numpy()
    out = np.full(len(col), _MISSING, dtype=np.uint64)
    present = ~missing
    if not present.any():
        return out
    values = col if not missing.any() else col[present]
    if pd.api.types.is_bool_dtype(dtype):
        out[present] = _tagged(values.to_numpy(dtype=np.int64).view(np.uint64), _INT)
    elif pd.api.types.is_integer_dtype(dtype):
        out[present] = _integer_hashes(values)
    elif pd.api.types.is_float_dtype(dtype):
        out[present] = _number_hashes(values.to_numpy(dtype=np.float64))
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        out[present] = _tagged(_utc_nanoseconds(values).view(np.uint64), _DATETIME)
    elif pd.api.types.is_timedelta64_dtype(dtype):
        ns = values.dt.as_unit("ns").to_numpy(dtype="timedelta64[ns]").view(np.int64)
        out[present] = _tagged(ns.view(np.uint64), _TIMEDELTA)
    return out


def fingerprint(df: pd.DataFrame) -> str:
    """The content fingerprint of ``df``: ``"sha256:"`` and 64 hex digits.

    Independent of row order, column order, the index and the storage format; dependent on
    every value, the column names and how many times each row occurs. See the module
    docstring (and ``docs/data.md``) for the canonical form of each kind of value.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(
            f"fingerprint() needs a pandas DataFrame, got {type(df).__name__}; read the data "
            f"with mlwright.load(...) first."
        )
    return fingerprint_rows(*row_hashes(df))


def row_hashes(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """One 64-bit hash per row of ``df`` (in row order) and the column names in hashing
    order: the parts of :func:`fingerprint`, so that a table read in pieces (a Parquet
    dataset larger than memory) gets the fingerprint of the whole, see
    :func:`fingerprint_rows`."""
    names = [str(c) for c in df.columns]
    hashes = [_column_hashes(df.iloc[:, i]) for i in range(df.shape[1])]
    # Sort columns by name; equal names (a malformed but possible frame) by their content.
    duplicated = {n for n in names if names.count(n) > 1}
    order = sorted(range(len(names)), key=lambda i: (
        names[i],
        hashlib.sha256(hashes[i].tobytes()).digest() if names[i] in duplicated else b"",
    ))
    rows = np.full(len(df), _ROW_SEED, dtype=np.uint64)
    for i in order:
        rows *= _ROW_MULT
        rows += hashes[i]
        _mix_inplace(rows)
    return rows, [names[i] for i in order]


def fingerprint_rows(rows: np.ndarray, columns: list[str]) -> str:
    """The fingerprint of a table from its row hashes (any order; sorted here, in place)
    and its column names in hashing order (both from :func:`row_hashes`)."""
    rows.sort()
    header = json.dumps(
        {"algorithm": ALGORITHM, "rows": len(rows), "columns": columns},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(header.encode("utf-8"))
    digest.update(rows.astype("<u8", copy=False).tobytes())
    return "sha256:" + digest.hexdigest()
