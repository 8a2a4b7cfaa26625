"""The profile of a Parquet dataset larger than memory.

:func:`profile` runs on a sample of the rows (kinds, charts, warnings, leakage, duplicate
rows: what needs the values); every column's counts, missing values, distinct values, most
common values and number statistics, the row and missing-cell counts and the target's
class counts are then replaced by the exact figures over all rows (DuckDB aggregates over
the files, :func:`mlwright.data.dataset.aggregate`). ``meta["sample_rows"]`` says how many
rows the rest came from.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlwright.data.dataset import ParquetDataset, aggregate
from mlwright.data.kinds import Task
from mlwright.data.profile.build import profile
from mlwright.data.profile.columns import QUANTILES, TOP_VALUES, _label
from mlwright.data.profile.result import ColumnProfile, Profile

__all__ = ["profile_parquet"]

#: What the profile of a dataset takes from the sample, not from all rows.
FROM_SAMPLE = ("kind", "charts", "warnings", "leakage", "duplicate_rows", "text statistics")


def _read_as(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if getattr(dtype, "kind", "") == "O":
        return "string"
    return "other"


def profile_parquet(dataset: ParquetDataset, sample: pd.DataFrame, target: str | None = None,
                    *, task: str | Task | None = None, seed: int = 0) -> Profile:
    """:func:`profile` of ``sample`` (rows of ``dataset``) with the figures of every row."""
    p = profile(sample, target, task=task, seed=seed)
    types = {c.name: _read_as(sample[c.name]) for c in p.columns}
    wanted: dict[str, int | None] = {c.name: TOP_VALUES for c in p.columns}
    if target is not None and p.task is not Task.REGRESSION:
        wanted[target] = None
    aggs = aggregate(dataset, types, values=wanted, probs=QUANTILES)
    for column in p.columns:
        agg = aggs[column.name]
        if pd.api.types.is_integer_dtype(sample[column.name].dtype):  # DuckDB read doubles
            agg.values = [(int(v), c) for v, c in agg.values]
        _update(column, agg)
    p.n_rows = dataset.n_rows
    p.missing_cells = int(sum(c.missing for c in p.columns))
    if len(sample):
        p.memory_bytes = int(p.memory_bytes * dataset.n_rows / len(sample))
    if target is not None and p.target_distribution is not None \
            and p.target_distribution.get("type") == "classes":
        counts = aggs[target].values
        total = sum(c for _, c in counts)
        p.target_distribution["classes"] = [
            {"value": _label(v), "count": c, "share": c / total} for v, c in counts]
        p.imbalance_ratio = float(counts[0][1] / counts[-1][1]) if counts else None
    p.meta.update({"sample_rows": len(sample), "from_sample": list(FROM_SAMPLE),
                   "source": dataset.spec})
    return p


def _update(column: ColumnProfile, agg: Any) -> None:
    n = agg.rows
    column.count, column.missing = agg.count, n - agg.count
    column.missing_share = column.missing / n if n else 0.0
    column.distinct = agg.distinct
    column.top_values = [{"value": _label(v), "count": c, "share": c / n}
                         for v, c in agg.values[:TOP_VALUES]]
    if "mean" in column.stats and agg.finite:
        column.stats.update({
            "mean": agg.mean, "std": agg.std if agg.finite > 1 else 0.0,
            "min": agg.min, "max": agg.max,
            "quantiles": {str(q): agg.quantiles[q] for q in QUANTILES},
            "zeros": agg.zeros, "negatives": agg.negatives,
            "infinite": agg.count - agg.finite})
