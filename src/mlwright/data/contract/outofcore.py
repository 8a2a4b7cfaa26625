"""The contract of a Parquet dataset larger than memory.

The rules stay :func:`learn_contract`'s: it runs on a sample of the rows, which decides each
column's kind, logical type and policies (the kind rules need the values, and a sample
large enough to train on decides them as the whole would). Every figure is then replaced by
the exact one over all rows, from DuckDB aggregates over the files: counts, missing values,
distinct values, the closed sets of categories (so a category the sample missed is still
allowed), the most common values, and for numbers the range, mean, spread, quantiles and
histogram. The fingerprint is the whole table's (computed piece by piece by the caller).
Text lengths and date statistics stay the sample's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.contract.learn import (
    _CLOSED_KINDS,
    _NUMBER_TYPES,
    _OPTIONAL_KINDS,
    N_BINS,
    QUANTILE_PROBS,
    TOP_VALUES,
    _scalar,
    _sorted_counts,
    learn_contract,
)
from mlwright.data.contract.schema import (
    ColumnSpec,
    Contract,
    FrequencyStats,
    LogicalType,
    NumericStats,
    TargetSpec,
)
from mlwright.data.dataset import ParquetDataset, aggregate, histogram
from mlwright.data.kinds import ColumnKind, Task

__all__ = ["learn_contract_parquet", "read_as"]

_EDGE_PROBS = tuple(float(p) for p in np.linspace(0, 1, N_BINS + 1))
#: Value counts fetched for a high-cardinality column before the TOP_VALUES are chosen
#: (ties at the cut are ordered by value, as learn_contract orders them).
_FETCH = 20 * TOP_VALUES


def read_as(dtype: LogicalType) -> str:
    """How DuckDB reads a column of this logical type (see :func:`aggregate`)."""
    if dtype in _NUMBER_TYPES:
        return "number"
    if dtype is LogicalType.BOOLEAN:
        return "boolean"
    if dtype is LogicalType.STRING:
        return "string"
    return "other"


def learn_contract_parquet(dataset: ParquetDataset, sample: pd.DataFrame, target: str | None,
                           *, task: str | Task | None = None, fingerprint: str,
                           **options: Any) -> Contract:
    """The contract of every row of ``dataset``: :func:`learn_contract` on ``sample`` (rows
    of the dataset), with the figures recomputed over all rows (see the module docstring).
    ``options``: learn_contract's policies."""
    base = learn_contract(sample, target, task=task, source=dataset.spec, **options)
    types = {c.name: read_as(c.dtype) for c in base.columns}
    wanted: dict[str, int | None] = {}
    for c in base.columns:
        if c.kind in _CLOSED_KINDS or c.name == target:
            wanted[c.name] = None
        elif c.kind is ColumnKind.HIGH_CARDINALITY:
            wanted[c.name] = _FETCH
    probs = tuple(sorted(set(QUANTILE_PROBS) | set(_EDGE_PROBS)))
    aggs = aggregate(dataset, types, values=wanted, probs=probs)
    columns = [_column(dataset, spec, aggs[spec.name]) for spec in base.columns]
    target_spec = base.target
    if base.target is not None and base.target.classes is not None:
        spec = next(c for c in columns if c.name == base.target.name)
        values = [_scalar(v, spec.dtype) for v, _ in aggs[spec.name].values]
        target_spec = TargetSpec(name=base.target.name, task=base.target.task,
                                 classes=sorted(set(values), key=lambda v: (str(type(v)), v)))
    return Contract(columns=columns, target=target_spec, n_rows=dataset.n_rows,
                    fingerprint=fingerprint, meta=base.meta)


def _column(dataset: ParquetDataset, spec: ColumnSpec, agg: Any) -> ColumnSpec:
    n, count = agg.rows, agg.count
    stats = spec.stats.model_copy(update={
        "count": count, "missing": n - count, "missing_rate": (n - count) / n if n else 0.0,
        "n_unique": agg.distinct})
    update: dict[str, Any] = {"nullable": count < n}
    closed = spec.kind in _CLOSED_KINDS and count > 0
    if agg.values and (closed or spec.kind is ColumnKind.HIGH_CARDINALITY):
        counts = pd.Series({v: c for v, c in agg.values}, dtype=np.int64)
        pairs = _sorted_counts(counts, spec.dtype)
        shown = pairs if closed else pairs[:TOP_VALUES]
        stats.frequencies = FrequencyStats(values=[v for v, _ in shown],
                                           counts=[c for _, c in shown],
                                           other_count=count - sum(c for _, c in shown))
        if closed:
            update["categories"] = sorted((v for v, _ in pairs),
                                          key=lambda v: (str(type(v)), v))
    if spec.dtype in _NUMBER_TYPES and agg.finite:
        stats.numeric = _numeric(dataset, spec.name, agg)
        if spec.kind not in _OPTIONAL_KINDS and spec.min is not None:
            update["min"], update["max"] = stats.numeric.min, stats.numeric.max
    return spec.model_copy(update={**update, "stats": stats})


def _numeric(dataset: ParquetDataset, name: str, agg: Any) -> NumericStats:
    """learn_contract's _numeric_stats, from the aggregates (np.quantile's linear
    interpolation is DuckDB's quantile_cont)."""
    edges = np.unique([agg.quantiles[p] for p in _EDGE_PROBS])
    if edges.size < 2:
        edges_list, counts = [float(edges[0])] * 2, [agg.finite]
    else:
        edges_list = [float(e) for e in edges]
        counts = histogram(dataset, name, edges_list)
    return NumericStats(min=agg.min, max=agg.max, mean=agg.mean,
                        std=agg.std if agg.finite > 1 else 0.0,
                        quantile_probs=list(QUANTILE_PROBS),
                        quantiles=[agg.quantiles[p] for p in QUANTILE_PROBS],
                        bin_edges=edges_list, bin_counts=counts)
