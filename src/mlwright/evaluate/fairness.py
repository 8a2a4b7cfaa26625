"""Fairness slices: metrics per group of a sensitive column, and disparity ratios.

Ratios are min / max across groups (1.0 = parity) and are flagged below a threshold (the
"four-fifths rule", 0.8 by default, ``evaluate.fairness_threshold``):

- binary: demographic parity (positive-prediction rate) and equal opportunity (true
  positive rate), plus the ratio of accuracies;
- multiclass: the ratio of accuracies and, per class, of the rates it is predicted;
- regression: calibration parity, the ratio across groups of mean prediction / mean actual
  (a group the model systematically under- or over-predicts), and the ratio of mean
  absolute errors (a lower error being better, shown as min/max too). The ratio of mean
  predictions is shown beside the ratio of mean actuals but never flagged: groups whose
  actual values differ should get different predictions, so a parity of predictions is not
  a finding for a regression target.

Groups with fewer than ``min_rows`` rows are shown but left out of the ratios: a rate over
a handful of rows says more about chance than about the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright._json import finite
from mlwright.evaluate.scores import Predictions

__all__ = ["FairnessSlice", "fairness_slices", "group_labels"]

MISSING = "(missing)"
OTHER = "(other)"


def group_labels(values: pd.Series, *, max_groups: int = 12, n_bins: int = 4) -> pd.Series:
    """Group names for a sensitive column: numbers with many values become quantile bins,
    rare categories beyond ``max_groups`` become "(other)", missing values "(missing)"."""
    values = values.reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > max(n_bins, 10):
        binned = pd.qcut(values.astype(float), q=n_bins, duplicates="drop")
        labels = binned.astype(str).where(binned.notna(), MISSING)
        return labels.astype(object)
    labels = values.astype(object).map(lambda v: MISSING if v is None or v != v else str(v))
    counts = labels.value_counts()
    if len(counts) > max_groups:
        keep = set(counts.index[: max_groups - 1])
        labels = labels.where(labels.isin(keep), OTHER)
    return labels


@dataclass
class FairnessSlice:
    """One sensitive column: a row of metrics per group, and the disparity ratios."""

    column: str
    task: str
    groups: pd.DataFrame
    ratios: dict[str, dict[str, Any]]
    threshold: float
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        return [name for name, r in self.ratios.items() if r["flagged"]]

    def to_dict(self) -> dict[str, Any]:
        groups = self.groups.replace({np.nan: None}).to_dict(orient="records")
        return {"column": self.column, "task": self.task, "threshold": self.threshold,
                "groups": groups, "ratios": self.ratios, "flagged": self.flagged,
                "notes": self.notes}


def _ratio(values: pd.Series, threshold: float, label: str, explain: str, *,
           finding: bool = True) -> dict[str, Any]:
    """min / max of ``values`` across groups; ``finding=False`` shows it without a flag."""
    v = values.dropna()
    v = v[np.isfinite(v.astype(float))]
    if len(v) < 2 or v.max() <= 0:
        return {"label": label, "value": None, "flagged": False, "lowest": None,
                "highest": None, "explain": explain}
    ratio = float(v.min() / v.max())
    return {"label": label, "value": ratio, "flagged": finding and bool(ratio < threshold),
            "lowest": str(v.idxmin()), "highest": str(v.idxmax()), "explain": explain}


def _calibration(table: pd.DataFrame) -> pd.Series:
    """mean prediction / mean actual per group; only where every group's actuals are
    positive (a ratio of means crossing zero says nothing)."""
    actual = table["mean_actual"].astype(float)
    if not (actual > 0).all():
        return pd.Series(np.nan, index=table.index)
    return table["mean_prediction"].astype(float) / actual


def fairness_slices(p: Predictions, sensitive: pd.Series, *, column: str | None = None,
                    threshold: float = 0.8, min_rows: int = 30, max_groups: int = 12,
                    n_bins: int = 4) -> FairnessSlice:
    """Metrics per group of ``sensitive`` (aligned with the rows of ``p``)."""
    from sklearn import metrics as skm

    name = column or str(sensitive.name)
    if len(sensitive) != len(p):
        raise ValueError(f"sensitive column {name!r} has {len(sensitive)} rows, the "
                         f"predictions {len(p)}")
    labels = group_labels(sensitive, max_groups=max_groups, n_bins=n_bins).to_numpy()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    order = pd.Series(labels).value_counts().index
    for g in order:
        mask = labels == g
        q = p.take(np.flatnonzero(mask))
        row: dict[str, Any] = {"group": g, "n": int(mask.sum()), "share": float(mask.mean())}
        if p.task == "regression":
            err = q.y - q.pred
            row.update(mean_actual=float(q.y.mean()), mean_prediction=float(q.pred.mean()),
                       rmse=float(np.sqrt(np.mean(err ** 2))), mae=float(np.mean(np.abs(err))),
                       bias=float(np.mean(q.pred - q.y)))
        else:
            assert q.proba is not None and p.classes is not None
            row["accuracy"] = float(np.mean(q.y == q.pred))
            if len(p.classes) == 2:
                pos, predicted = q.y == 1, q.pred == 1
                row.update(
                    base_rate=float(pos.mean()),
                    positive_rate=float(predicted.mean()),
                    tpr=float(predicted[pos].mean()) if pos.any() else np.nan,
                    fpr=float(predicted[~pos].mean()) if (~pos).any() else np.nan,
                    precision=float(pos[predicted].mean()) if predicted.any() else np.nan,
                    roc_auc=float(skm.roc_auc_score(pos, q.proba[:, 1]))
                    if 0 < pos.sum() < len(pos) else np.nan)
            else:
                row["f1_macro"] = float(skm.f1_score(q.y, q.pred, average="macro",
                                                     labels=np.arange(len(p.classes)),
                                                     zero_division=0))
                for i, c in enumerate(p.classes):
                    row[f"rate_{c}"] = float(np.mean(q.pred == i))
        rows.append(row)
    table = pd.DataFrame(rows)
    small = table["n"] < min_rows
    if small.any():
        notes.append(f"Groups with fewer than {min_rows} rows ("
                     + ", ".join(map(str, table.loc[small, "group"])) + ") are left out of "
                     "the ratios.")
    big = table.loc[~small].set_index("group")
    ratios: dict[str, dict[str, Any]] = {}
    if p.task == "regression":
        ratios["calibration"] = _ratio(
            _calibration(big), threshold, "Calibration parity",
            "lowest / highest (mean prediction / mean actual) across groups: a group the "
            "model under- or over-predicts")
        ratios["mean_prediction"] = _ratio(
            big["mean_prediction"], threshold, "Mean prediction ratio",
            "lowest / highest mean prediction across groups; shown, not flagged: compare "
            "it with the ratio of mean actuals", finding=False)
        ratios["mean_actual"] = _ratio(
            big["mean_actual"], threshold, "Mean actual ratio",
            "lowest / highest mean actual value across groups", finding=False)
        ratios["mae"] = _ratio(big["mae"], threshold, "Error ratio (MAE)",
                               "lowest / highest mean absolute error across groups")
    elif p.classes is not None and len(p.classes) == 2:
        ratios["demographic_parity"] = _ratio(
            big["positive_rate"], threshold, "Demographic parity",
            f"lowest / highest rate of predicting {p.classes[1]!s}")
        ratios["equal_opportunity"] = _ratio(
            big["tpr"], threshold, "Equal opportunity",
            f"lowest / highest true-positive rate (recall of {p.classes[1]!s})")
        ratios["accuracy"] = _ratio(big["accuracy"], threshold, "Accuracy ratio",
                                    "lowest / highest accuracy across groups")
    else:
        assert p.classes is not None
        ratios["accuracy"] = _ratio(big["accuracy"], threshold, "Accuracy ratio",
                                    "lowest / highest accuracy across groups")
        for c in p.classes:
            ratios[f"rate_{c}"] = _ratio(
                big[f"rate_{c}"], threshold, f"Parity of predicting {c}",
                f"lowest / highest rate of predicting {c}")
    for r in ratios.values():
        r["value"] = finite(r["value"])
    return FairnessSlice(name, p.task, table, ratios, threshold, notes)
