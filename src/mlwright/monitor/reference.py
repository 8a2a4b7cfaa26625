"""The reference a window is compared with: the training contract, plus samples.

The contract keeps, per column, a quantile sketch and a 20-bin equal-frequency histogram
(numeric) or value counts (categorical). That is enough for the categorical detectors and
for PSI, but the two-sample Kolmogorov-Smirnov and Wasserstein detectors are exact only
against a *sample* of reference values. So a :class:`Reference` takes an optional sample of
training rows (``sample.parquet`` in a run folder) and uses it for numeric columns; without
one, numeric detectors fall back to the sketch. The contract format is not changed.

Prediction drift compares the window's predictions with the out-of-fold predictions of
training (``oof.parquet``): what the model predicted on rows it had not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.contract import ColumnSpec, Contract, LogicalType, rules
from mlwright.data.kinds import ColumnKind
from mlwright.exceptions import MonitorError
from mlwright.monitor._base import ColumnReference
from mlwright.run import RunFolder

__all__ = ["Reference", "category_key", "load_reference"]

#: Numeric columns with this few distinct values are compared as categories (as Evidently).
MAX_NUMERIC_AS_CATEGORY = 5
_CATEGORICAL_KINDS = (ColumnKind.BOOLEAN, ColumnKind.CATEGORICAL, ColumnKind.HIGH_CARDINALITY)


def category_key(value: Any, dtype: LogicalType | str) -> str:
    """One spelling per value, whatever storage or JSON made of it (1, 1.0, True, "t" ->
    "true" in a boolean column), read by the contract's rules; a value that is not one of
    the column's type keeps its own text, so it counts as an unseen category."""
    if dtype == LogicalType.BOOLEAN:
        flag = rules.to_boolean(value)
        return str(value) if flag is None else ("true" if flag else "false")
    if dtype == LogicalType.INTEGER or dtype == LogicalType.FLOAT:
        number = rules.to_number(value)
        if number is None:
            return str(value)
        if dtype == LogicalType.FLOAT:
            try:
                return repr(float(number))
            except OverflowError:  # an int beyond a double's range
                return str(number)
        if isinstance(number, int):
            return str(number)
        return str(int(number)) if number.is_integer() else repr(number)
    return value if isinstance(value, str) else str(value)


@dataclass
class Reference:
    """Per-feature references (and the prediction reference) for one model."""

    contract: Contract
    columns: dict[str, ColumnReference]
    prediction: ColumnReference | None = None
    metric: str | None = None                 # the offline metric (metrics.json)
    offline_score: float | None = None
    source: str = ""
    dtypes: dict[str, LogicalType] = field(default_factory=dict)
    #: features no detector compares (dates, free text, ...): name -> why, for the report
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def task(self) -> str | None:
        return self.contract.target.task.value if self.contract.target else None

    @property
    def classes(self) -> list[Any] | None:
        return list(self.contract.target.classes) if self.contract.target and \
            self.contract.target.classes else None

    @property
    def n_rows(self) -> int:
        return self.contract.n_rows

    @classmethod
    def from_contract(cls, contract: Contract, *, sample: pd.DataFrame | None = None,
                      oof: pd.DataFrame | None = None, metric: str | None = None,
                      offline_score: float | None = None, source: str = "") -> Reference:
        columns: dict[str, ColumnReference] = {}
        dtypes: dict[str, LogicalType] = {}
        skipped: dict[str, str] = {}
        for name in contract.feature_names:
            spec = contract.column(name)
            col_sample = sample[name] if sample is not None and name in sample else None
            ref = _column_reference(spec, col_sample)
            if ref is not None:
                columns[name] = ref
                dtypes[name] = spec.dtype
            else:
                skipped[name] = _SKIP_REASONS.get(spec.kind, "no reference statistics")
        prediction = _prediction_reference(contract, oof) if oof is not None else None
        return cls(contract, columns, prediction, metric, offline_score, source, dtypes,
                   skipped)


#: Why a feature's kind has no drift detector (said in the report: "3 of 6 features" alone
#: hides that the others were never compared).
_SKIP_REASONS = {ColumnKind.DATETIME: "date", ColumnKind.TEXT: "free text",
                 ColumnKind.IDENTIFIER: "identifier", ColumnKind.CONSTANT: "constant"}


def _column_reference(spec: ColumnSpec, sample: pd.Series | None) -> ColumnReference | None:
    st = spec.stats
    missing_rate = float(st.missing_rate)
    if spec.kind is ColumnKind.NUMERIC and st.numeric is not None:
        num = st.numeric
        values = None
        if sample is not None:
            parsed = rules.parse_numbers(sample)
            values = np.sort(parsed[np.isfinite(parsed)])
        if st.n_unique <= MAX_NUMERIC_AS_CATEGORY and values is not None:
            keys, n_per_key = np.unique(values, return_counts=True)
            return ColumnReference(
                spec.name, "categorical", int(values.size), missing_rate,
                counts={category_key(k, spec.dtype): int(n) for k, n in zip(keys, n_per_key,
                                                                              strict=True)},
                closed=True)
        return ColumnReference(
            spec.name, "numeric", int(st.count), missing_rate, values=values,
            quantile_probs=np.asarray(num.quantile_probs), quantiles=np.asarray(num.quantiles),
            bin_edges=np.asarray(num.bin_edges), bin_counts=np.asarray(num.bin_counts),
            std=float(num.std))
    if spec.kind in _CATEGORICAL_KINDS and st.frequencies is not None:
        freq = st.frequencies
        counts: dict[str, int] = {}
        for v, n in zip(freq.values, freq.counts, strict=True):
            key = category_key(v, spec.dtype)
            counts[key] = counts.get(key, 0) + int(n)
        return ColumnReference(spec.name, "categorical", int(st.count), missing_rate,
                               counts=counts, other_count=int(freq.other_count),
                               closed=spec.categories is not None)
    return None  # dates, free text, identifiers, constants: not compared


def _prediction_reference(contract: Contract, oof: pd.DataFrame) -> ColumnReference | None:
    if "in_validation" in oof:
        oof = oof[oof["in_validation"].astype(bool)]
    target = contract.target
    if target is None or len(oof) == 0:
        return None
    if target.task.value == "regression" or "prediction" in oof:
        values = oof["prediction"].to_numpy(dtype=np.float64)
    else:
        proba_cols = [c for c in oof.columns if str(c).startswith("proba_")]
        if not proba_cols:
            return None
        if target.task.value == "binary":
            values = oof[proba_cols[-1]].to_numpy(dtype=np.float64)
        else:
            labels = np.asarray(target.classes, dtype=object)[
                oof[proba_cols].to_numpy().argmax(axis=1)]
            keys, counts = np.unique([str(x) for x in labels], return_counts=True)
            return ColumnReference("prediction", "categorical", len(labels),
                                   counts=dict(zip(keys.tolist(), counts.tolist(),
                                                   strict=True)), closed=True)
    values = np.sort(values[np.isfinite(values)])
    probs = np.linspace(0, 1, 21)
    edges = np.unique(np.quantile(values, probs))
    bin_counts = np.histogram(values, bins=edges)[0] if edges.size > 1 else np.array(
        [values.size])
    return ColumnReference("prediction", "numeric", int(values.size), values=values,
                           quantile_probs=probs, quantiles=np.quantile(values, probs),
                           bin_edges=edges, bin_counts=bin_counts,
                           std=float(values.std(ddof=1)) if values.size > 1 else 0.0)


def load_reference(path: str | Path | Contract | Reference, *,
                   sample: pd.DataFrame | None = None) -> Reference:
    """A :class:`Reference` from a run folder (contract.json, and sample.parquet,
    oof.parquet, metrics.json when present), a contract file, or a Contract."""
    if isinstance(path, Reference):
        return path
    if isinstance(path, Contract):
        return Reference.from_contract(path, sample=sample, source="contract")
    path = Path(path)
    if path.is_dir():
        run = RunFolder(path)
        if not run.has(run.CONTRACT):
            raise MonitorError(
                f"{path} holds no {run.CONTRACT}; expected a run folder written by 'mlwright "
                f"train' (or pass a contract file with --reference).")
        contract = run.load_contract()
        if sample is None:
            sample = run.read_sample()
        oof = run.read_oof()
        info = run.read_metrics()
        metric, score = info.get("metric"), info.get("cv_score")
        return Reference.from_contract(contract, sample=sample, oof=oof, metric=metric,
                                       offline_score=score, source=str(path))
    if path.is_file():
        return Reference.from_contract(Contract.load(path), sample=sample, source=str(path))
    raise MonitorError(
        f"No reference at {str(path)!r}: expected a run folder (with {RunFolder.CONTRACT}) "
        f"or a contract JSON file. Check the path given with --reference.")
