"""Target leakage: features that, on their own, say too much about the target.

Each feature is scored alone, out of fold, on a sample of rows. Every feature is first turned
into integer codes (categories and booleans as they are, numbers into quantile bins, missing
as a code of its own); the prediction for a row is then the smoothed target mean (or class
shares) of its code in the *other* folds. For numbers, quantile bins are a step function like
a shallow tree's, but vectorised with ``np.bincount``: scoring every column of a 10,000-row
sample takes milliseconds and needs no scikit-learn (whose import alone costs seconds).

Two verdicts, with thresholds calibrated on the public suite (see the profile tests):

* ``near_perfect``: the feature alone scores ROC AUC (one-vs-rest, macro, for multiclass)
  or R² of at least :data:`NEAR_PERFECT`: a copy or a function of the target.
* ``implies_class``: for a *rare* class, the rows where the feature alone puts that class at
  50% or more hold at least :data:`MIN_RECALL` of the class, at :data:`MIN_LIFT` times its
  base rate or more, and at a purity ``(precision - share) / (1 - share)`` of at least
  :data:`MIN_PURITY`. This is the signature of a field that is filled in *because of* the
  outcome: MplsStops' ``vehicleSearch=YES`` means ``personSearch=YES`` 81% of the time
  against a 12% base rate, while its overall AUC stays modest (0.71) because most positives
  have no such record. On the suite (10,000-row samples, five seeds) ``vehicleSearch``
  reaches a purity of 0.78-0.80 at a lift of 6.7; the strongest legitimate segments reach
  0.55 (``retweet_count`` for ``iphone`` in trump_tweet_source, lift 3.3). The lift condition
  keeps a strong honest feature of a balanced target (85% precision against 50%) from being
  flagged: there only a near-perfect score counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlwright.data.kinds import ColumnKind, Task

__all__ = [
    "MIN_LIFT",
    "MIN_PURITY",
    "MIN_RECALL",
    "NEAR_PERFECT",
    "EncodedFeature",
    "LeakageScore",
    "encode_feature",
    "score_features",
]

SAMPLE_ROWS = 10_000
N_FOLDS = 5
N_BINS = 32
# A feature alone reaching this ROC AUC / R² is almost certainly derived from the target.
NEAR_PERFECT = 0.95
# implies_class: share of the class captured, purity of the captured rows, minimum rows.
MIN_RECALL = 0.25
MIN_PURITY = 0.65
MIN_LIFT = 4.0
MIN_SEGMENT_ROWS = 30
# Pseudo-count pulling a rare code's estimate towards the training prior.
_SMOOTHING = 1.0
# Kinds never scored: ids, constants and free text carry their own warnings, and a date
# predicting the target usually reflects an era (a legitimate drift), not a leak.
_SKIPPED = {ColumnKind.IDENTIFIER, ColumnKind.CONSTANT, ColumnKind.TEXT, ColumnKind.DATETIME}


@dataclass(frozen=True)
class LeakageScore:
    """How well one feature alone predicts the target, out of fold."""

    column: str
    metric: str  # "roc_auc", "roc_auc_ovr" or "r2"
    score: float
    rows: int
    # The strongest "this value implies that class" segment (classification only).
    segment_class: str | None = None
    segment_rows: int = 0
    segment_precision: float = 0.0
    class_share: float = 0.0
    segment_recall: float = 0.0
    segment_condition: str = ""  # the feature's values or ranges in the segment

    @property
    def purity(self) -> float:
        """How far the segment's precision goes from the class share towards certainty."""
        if self.segment_class is None or self.class_share >= 1.0:
            return 0.0
        return (self.segment_precision - self.class_share) / (1.0 - self.class_share)

    @property
    def verdict(self) -> str | None:
        if self.score >= NEAR_PERFECT:
            return "near_perfect"
        if (
            self.segment_class is not None
            and self.segment_rows >= MIN_SEGMENT_ROWS
            and self.segment_recall >= MIN_RECALL
            and self.segment_precision >= MIN_LIFT * self.class_share
            and self.purity >= MIN_PURITY
        ):
            return "implies_class"
        return None


@dataclass(frozen=True)
class EncodedFeature:
    """A feature as integer codes, with what each code stands for."""

    codes: np.ndarray
    labels: list[str]  # one per code
    edges: np.ndarray | None = None  # numbers: code i holds edges[i-1] <= x < edges[i]

    def describe(self, selected: list[int], limit: int = 3) -> str:
        """A readable condition for a set of codes, e.g. ``= 'YES'`` or ``in [2, 5)``."""
        if self.edges is None:
            values = [repr(self.labels[c]) if c < len(self.labels) - 1 else "missing"
                      for c in selected[:limit]]
            if len(selected) == 1:
                return f"= {values[0]}" if values[0] != "missing" else "is missing"
            more = f", … {len(selected) - limit} more" if len(selected) > limit else ""
            return f"in {{{', '.join(values)}{more}}}"
        missing = len(self.edges) + 1
        runs: list[list[int]] = []
        for code in (c for c in selected if c != missing):
            if runs and code == runs[-1][-1] + 1:
                runs[-1].append(code)
            else:
                runs.append([code])
        parts = []
        for run in runs[:limit]:
            lo = f"{self.edges[run[0] - 1]:.6g}" if run[0] > 0 else None
            hi = f"{self.edges[run[-1]]:.6g}" if run[-1] < len(self.edges) else None
            parts.append("any value" if lo is None and hi is None else f">= {lo}" if hi is None
                         else f"< {hi}" if lo is None else f"in [{lo}, {hi})")
        if missing in selected:
            parts.append("is missing")
        return " or ".join(parts)


def encode_feature(series: pd.Series, kind: ColumnKind, n_bins: int = N_BINS
                   ) -> EncodedFeature:
    """Integer codes for one feature: categories as they are, numbers in quantile bins.

    Missing values get a code of their own, since missingness itself can leak.
    """
    if kind is ColumnKind.NUMERIC and pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values)
        edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, n_bins + 1)[1:-1]))
        codes = np.searchsorted(edges, values, side="right")
        codes[~finite] = len(edges) + 1
        labels = [f"bin {i}" for i in range(len(edges) + 1)] + ["missing"]
        return EncodedFeature(codes.astype(np.int64), labels, edges)
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = len(uniques)
    return EncodedFeature(codes, [str(u) for u in uniques] + ["missing"])


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from ranks (ties averaged), the Mann-Whitney form."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _oof_class_shares(codes: np.ndarray, y: np.ndarray, n_classes: int, folds: np.ndarray
                      ) -> np.ndarray:
    """For each row, the class shares of its code in the other folds (smoothed)."""
    n_codes = int(codes.max()) + 1
    flat = (folds * n_codes + codes) * n_classes + y
    per_fold = np.bincount(flat, minlength=N_FOLDS * n_codes * n_classes).reshape(
        N_FOLDS, n_codes, n_classes).astype(float)
    train = per_fold.sum(axis=0, keepdims=True) - per_fold  # counts outside each fold
    prior = train.sum(axis=1, keepdims=True)
    prior = prior / prior.sum(axis=2, keepdims=True)
    shares = (train + _SMOOTHING * prior) / (train.sum(axis=2, keepdims=True) + _SMOOTHING)
    return shares[folds, codes]


def _oof_means(codes: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    n_codes = int(codes.max()) + 1
    idx = folds * n_codes + codes
    size = N_FOLDS * n_codes
    sums = np.bincount(idx, weights=y, minlength=size).reshape(N_FOLDS, n_codes)
    counts = np.bincount(idx, minlength=size).reshape(N_FOLDS, n_codes).astype(float)
    train_sums, train_counts = sums.sum(0) - sums, counts.sum(0) - counts
    prior = train_sums.sum(axis=1, keepdims=True) / train_counts.sum(axis=1, keepdims=True)
    means = (train_sums + _SMOOTHING * prior) / (train_counts + _SMOOTHING)
    return means[folds, codes]


def _score_classification(column: str, feature: EncodedFeature, y: np.ndarray,
                          classes: list[str], folds: np.ndarray) -> LeakageScore:
    k = len(classes)
    codes = feature.codes
    shares = _oof_class_shares(codes, y, k, folds)
    onehot = y[:, None] == np.arange(k)[None, :]
    if k == 2:
        score, metric = _auc(onehot[:, 1], shares[:, 1]), "roc_auc"
    else:
        aucs = [_auc(onehot[:, j], shares[:, j]) for j in range(k) if onehot[:, j].sum() > 0]
        score, metric = float(np.nanmean(aucs)), "roc_auc_ovr"
    best: LeakageScore | None = None
    for j, label in enumerate(classes):
        segment = shares[:, j] >= 0.5
        n_seg, n_class = int(segment.sum()), int(onehot[:, j].sum())
        if n_seg < MIN_SEGMENT_ROWS or n_class == 0:
            continue
        hits = int((segment & onehot[:, j]).sum())
        candidate = LeakageScore(
            column, metric, score, len(y), segment_class=label, segment_rows=n_seg,
            segment_precision=hits / n_seg, class_share=n_class / len(y),
            segment_recall=hits / n_class,
            segment_condition=feature.describe(sorted(set(codes[segment].tolist()))),
        )
        # Keep the segment that flags, else the purest one that covers enough of its class.
        rank = (candidate.verdict is not None, candidate.purity)
        if candidate.segment_recall >= MIN_RECALL and (
                best is None or rank > (best.verdict is not None, best.purity)):
            best = candidate
    return best or LeakageScore(column, metric, score, len(y))


def score_features(df: pd.DataFrame, target: str, task: Task, kinds: dict[str, ColumnKind], *,
                   sample_rows: int = SAMPLE_ROWS, seed: int = 0) -> list[LeakageScore]:
    """Score every usable feature of ``df`` alone against ``target``, best first.

    Rows with a missing target are left out; at most ``sample_rows`` rows are used.
    """
    data = df[df[target].notna()]
    rng = np.random.default_rng(seed)
    if len(data) > sample_rows:  # (DataFrame.sample permutes every row: slow on millions)
        data = data.iloc[np.sort(rng.choice(len(data), size=sample_rows, replace=False))]
    if len(data) < 2 * N_FOLDS:
        return []
    folds = rng.permutation(len(data)) % N_FOLDS
    y_raw = data[target]
    scores = []
    if task is Task.REGRESSION:
        y = y_raw.to_numpy(dtype=float)
        total = float(((y - y.mean()) ** 2).sum())
    else:
        y_codes, uniques = pd.factorize(y_raw.astype(str), sort=True)
        classes = [str(u) for u in uniques]
    for column in data.columns:
        kind = kinds.get(str(column))
        if column == target or kind is None or kind in _SKIPPED:
            continue
        feature = encode_feature(data[column], kind)
        if task is Task.REGRESSION:
            pred = _oof_means(feature.codes, y, folds)
            r2 = 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else float("nan")
            scores.append(LeakageScore(str(column), "r2", r2, len(y)))
        else:
            scores.append(_score_classification(str(column), feature, np.asarray(y_codes),
                                                classes, folds))
    return sorted(scores, key=lambda s: (s.verdict is None, -s.score))
