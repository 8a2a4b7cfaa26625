"""What kind of column is this? One answer shared by the profile, the contract and prep.

The kind decides how a column is prepared (one-hot, target encoding, TF-IDF, date parts,
dropped) and how it is validated and monitored, so it is inferred in one place only.
"""

from __future__ import annotations

import re
from enum import StrEnum

import numpy as np
import pandas as pd

__all__ = [
    "ColumnKind",
    "Task",
    "infer_kind",
    "infer_kinds",
    "infer_task",
    "is_text_dtype",
]

# At most this many distinct values make a categorical "low cardinality" (one-hot friendly).
LOW_CARDINALITY_MAX = 25
# Text columns: at least this many words per value on average.
TEXT_MIN_MEAN_WORDS = 4.0
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key|idnum|id_str)($|[_\W])|id$|Id$|ID$", re.I)
_BOOL_TEXT = {
    frozenset({"true", "false"}),
    frozenset({"yes", "no"}),
    frozenset({"y", "n"}),
    frozenset({"t", "f"}),
}


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"  # low cardinality
    HIGH_CARDINALITY = "high_cardinality"
    DATETIME = "datetime"
    TEXT = "text"
    IDENTIFIER = "identifier"
    CONSTANT = "constant"


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


def is_text_dtype(series: pd.Series) -> bool:
    """True for object, pandas string and categorical columns (values handled as labels)."""
    dtype = series.dtype
    return (
        dtype == object  # noqa: E721 (numpy dtype equality, not a type check)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _looks_like_identifier(series: pd.Series, non_null: pd.Series, n_distinct: int) -> bool:
    n = len(non_null)
    if n < 20 or n_distinct < 0.95 * n:
        return False
    if is_text_dtype(series):
        return True
    if pd.api.types.is_integer_dtype(non_null.dtype) or (
        pd.api.types.is_float_dtype(non_null.dtype)
        and np.all(np.mod(non_null.to_numpy(dtype=float), 1) == 0)
    ):
        # Unique integers are an id when named like one or when they count up like a key.
        return bool(_ID_NAME.search(str(series.name))) or non_null.is_monotonic_increasing
    return False


def _text_looks_datetime(non_null: pd.Series) -> bool:
    sample = non_null.head(200).astype(str)  # head first: astype on a million rows is slow
    # Cheap gate first: ISO-like dates or times, so that "12" or "A-3" never parse as dates.
    if not sample.str.match(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}.*)?\s*$").all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", utc=True, format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def _count_distinct(non_null: pd.Series) -> int:
    # Sorting floats is several times faster than hashing them (1M values: 0.03 s vs 0.24 s).
    if isinstance(non_null.dtype, np.dtype) and non_null.dtype.kind == "f":
        values = np.sort(non_null.to_numpy())
        return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if len(values) else 0
    return int(non_null.nunique())


def infer_kind(series: pd.Series, *, n_distinct: int | None = None) -> ColumnKind:
    """Infer the :class:`ColumnKind` of one column from its values and dtype.

    ``n_distinct``, the number of distinct non-missing values, saves a pass over a long
    column when the caller has counted them already (the profile does).
    """
    non_null = series.dropna()
    if len(non_null) == 0:
        return ColumnKind.CONSTANT
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        several = (n_distinct if n_distinct is not None else non_null.nunique()) > 1
        if not several:
            return ColumnKind.CONSTANT
        return ColumnKind.BOOLEAN if pd.api.types.is_bool_dtype(dtype) else ColumnKind.DATETIME
    try:
        if n_distinct is None:
            n_distinct = _count_distinct(non_null)
    except TypeError:  # unhashable values (lists, dicts): treat them as text
        return ColumnKind.TEXT
    if n_distinct <= 1:
        return ColumnKind.CONSTANT
    if pd.api.types.is_numeric_dtype(dtype):
        if n_distinct == 2 and set(pd.unique(non_null)) <= {0, 1}:
            return ColumnKind.BOOLEAN
        if _looks_like_identifier(series, non_null, n_distinct):
            return ColumnKind.IDENTIFIER
        return ColumnKind.NUMERIC
    if is_text_dtype(series):
        # The checks below read at most 2,000 values; converting every row to str is slow.
        text = non_null.head(2000).astype(str)
        if n_distinct == 2 and frozenset(
                str(v).strip().lower() for v in pd.unique(non_null)) in _BOOL_TEXT:
            return ColumnKind.BOOLEAN
        if n_distinct <= LOW_CARDINALITY_MAX:
            return ColumnKind.CATEGORICAL
        if _text_looks_datetime(text):
            return ColumnKind.DATETIME
        sample = text.head(2000)
        mean_words = float(sample.str.split().str.len().mean())
        if mean_words >= TEXT_MIN_MEAN_WORDS:
            return ColumnKind.TEXT
        if _looks_like_identifier(series, non_null, n_distinct):
            return ColumnKind.IDENTIFIER
        return ColumnKind.HIGH_CARDINALITY
    return ColumnKind.HIGH_CARDINALITY


def infer_kinds(df: pd.DataFrame) -> dict[str, ColumnKind]:
    """The kind of every column of ``df``, in column order."""
    return {str(c): infer_kind(df[c]) for c in df.columns}


def infer_task(y: pd.Series) -> Task:
    """Binary, multiclass or regression, from the target's values.

    Text, boolean and categorical targets are classification; numbers are regression unless
    they are few integer codes (at most 20 distinct integers and at most 5% of the rows).
    """
    non_null = y.dropna()
    n_distinct = int(non_null.nunique())
    if n_distinct == 2:
        return Task.BINARY
    if (
        is_text_dtype(y)
        or pd.api.types.is_bool_dtype(y.dtype)
    ):
        return Task.MULTICLASS
    values = non_null.to_numpy()
    integral = pd.api.types.is_integer_dtype(y.dtype) or bool(
        np.all(np.mod(values.astype(float), 1) == 0)
    )
    if integral and n_distinct <= 20 and n_distinct <= max(3, 0.05 * len(non_null)):
        return Task.MULTICLASS
    return Task.REGRESSION
