"""normalize_frame(): every source's frame given the same column types (see the package
docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["normalize_frame"]


_TRUE_FALSE = {"true": True, "false": False}


def normalize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Give every source the same column types (see the module docstring)."""
    # Positions, not labels: a frame sliced by train_test_split (or a Parquet file written
    # from one) keeps its old row labels, and columns rebuilt below are positional.
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    out = {}
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col.dtype):
            col = col.astype(object).where(col.notna(), np.nan)
        if col.dtype == object:
            col = _infer_text_column(col)
        elif pd.api.types.is_extension_array_dtype(col.dtype) and pd.api.types.is_numeric_dtype(
            col.dtype
        ):
            # Nullable Int64/Float64 from Parquet or SQL: plain numpy, as a CSV read gives.
            col = col.astype("float64") if col.isna().any() else col.astype(
                col.dtype.numpy_dtype
            )
        elif pd.api.types.is_datetime64_any_dtype(col.dtype):
            col = _unify_datetime(col)
        out[name] = col
    normalized = pd.DataFrame(out, index=pd.RangeIndex(len(df)))
    normalized.attrs.update(df.attrs)  # what the source noted (a repeated header name)
    return normalized


def _unify_datetime(col: pd.Series) -> pd.Series:
    # One resolution and zone everywhere: nanoseconds, UTC when the source had a zone.
    if getattr(col.dtype, "tz", None) is not None:
        return col.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    return col.astype("datetime64[ns]")


def _expand(per_value: pd.Series, codes: np.ndarray) -> pd.Series:
    """Values inferred once per distinct value, spread back over the rows (-1: missing)."""
    out = per_value.take(np.where(codes < 0, 0, codes)).reset_index(drop=True)
    return out.where(pd.Series(codes >= 0)) if (codes < 0).any() else out


def _infer_text_column(col: pd.Series) -> pd.Series:
    # Work on the distinct values only: a million-row column of a few thousand labels costs
    # one hashing pass instead of a million string conversions.
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    if len(uniques) == 0:
        return col
    values = pd.Series(np.asarray(uniques, dtype=object))
    if not all(isinstance(v, str) for v in values.head(1000)):
        # Mixed Python objects (bytes, Decimal, dates from SQL drivers): leave them be unless
        # they are all numbers.
        converted = pd.to_numeric(values, errors="coerce")
        return _expand(converted, codes) if converted.notna().all() else col
    stripped = values.str.strip()
    lowered = stripped.str.lower()
    if len(values) <= 4 and lowered.isin(_TRUE_FALSE.keys()).all():
        flags = _expand(lowered.map(_TRUE_FALSE), codes)
        return flags.astype("boolean") if (codes < 0).any() else flags.astype(bool)
    # Cheap gates on a few values before converting them all.
    if pd.to_numeric(stripped.head(200), errors="coerce").notna().all():
        numeric = pd.to_numeric(stripped, errors="coerce")
        if numeric.notna().all():
            return _expand(numeric, codes)
    from mlwright.data.kinds import _text_looks_datetime

    if _text_looks_datetime(stripped):
        parsed = pd.to_datetime(stripped, errors="coerce", utc=True, format="mixed")
        if parsed.notna().all():
            # Non-capturing group: a capturing one makes pandas warn on every load.
            has_zone = stripped.head(200).str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$").any()
            parsed = parsed if has_zone else parsed.dt.tz_localize(None)
            return _unify_datetime(_expand(parsed, codes))
    return col
