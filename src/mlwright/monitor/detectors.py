"""The built-in drift detectors (scipy.stats underneath).

Numeric: Kolmogorov-Smirnov (``ks``, a test) and the Wasserstein distance divided by the
reference's standard deviation (``wasserstein``, as Evidently norms it). Categorical:
chi-squared (``chisquare``, a test) and the Jensen-Shannon distance (``jensenshannon``).
Both: the population stability index (``psi``) over the contract's equal-frequency bins or
the categories. Two-sample versions are used wherever a reference sample exists, so the
reference's own sampling noise is accounted for; otherwise numeric detectors fall back to
the contract's quantile sketch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlwright.monitor._base import (
    ColumnReference,
    ColumnType,
    ColumnWindow,
    Detector,
    register_detector,
)

__all__ = [
    "PSI",
    "ChiSquare",
    "JensenShannon",
    "KolmogorovSmirnov",
    "Wasserstein",
    "category_table",
]

OTHER = "(other)"
_EPS = 1e-4  # share floor for PSI: an empty bin would make it infinite


def _quantile_sketch(ref: ColumnReference) -> tuple[np.ndarray, np.ndarray]:
    """The reference's (probabilities, quantiles): every numeric reference carries them."""
    probs, qs = ref.quantile_probs, ref.quantiles
    assert probs is not None and qs is not None, f"{ref.name!r} has no quantile sketch"
    return probs, qs


def _reference_cdf(ref: ColumnReference) -> Callable[[np.ndarray], np.ndarray]:
    probs, qs = _quantile_sketch(ref)

    def cdf(x: np.ndarray) -> np.ndarray:
        return np.interp(x, qs, probs, left=0.0, right=1.0)

    return cdf


@register_detector
class KolmogorovSmirnov(Detector):
    """Two-sample Kolmogorov-Smirnov test (one-sample against the quantile sketch when the
    reference has no sample)."""

    name = "ks"
    kind = "test"
    default_threshold = 0.05

    def applies_to(self, column_type: ColumnType) -> bool:
        return column_type == "numeric"

    def statistic(self, reference: ColumnReference, current: ColumnWindow
                  ) -> tuple[float, float | None]:
        from scipy import stats

        cur = current.values
        if cur is None or cur.size == 0:
            return float("nan"), None
        if reference.values is not None and reference.values.size:
            res = stats.ks_2samp(reference.values, cur, method="asymp")
        else:
            res = stats.kstest(cur, _reference_cdf(reference), method="asymp")
        return float(res.statistic), float(res.pvalue)


@register_detector
class Wasserstein(Detector):
    """Wasserstein (earth mover's) distance in units of the reference standard deviation."""

    name = "wasserstein"
    kind = "distance"
    default_threshold = 0.1

    def applies_to(self, column_type: ColumnType) -> bool:
        return column_type == "numeric"

    def statistic(self, reference: ColumnReference, current: ColumnWindow
                  ) -> tuple[float, float | None]:
        from scipy import stats

        cur = current.values
        if cur is None or cur.size == 0:
            return float("nan"), None
        if reference.values is not None and reference.values.size:
            ref = reference.values
            # Values beyond the training range by more than its width are pulled in to
            # that bound: one absurd value (1e30, flagged by data quality already) would
            # otherwise move the mean gap by 1e30 / n and pass for drift of the column.
            lo, hi = float(ref[0]), float(ref[-1])   # sorted
            cur = np.clip(cur, lo - (hi - lo), hi + (hi - lo))
            dist = stats.wasserstein_distance(ref, cur)
            std = float(np.std(ref, ddof=1)) if ref.size > 1 else 0.0
        else:
            # Mean gap between the two quantile functions on a fine grid of probabilities.
            probs = np.linspace(0.0025, 0.9975, 400)
            ref_q = np.interp(probs, *_quantile_sketch(reference))
            dist = float(np.mean(np.abs(ref_q - np.quantile(cur, probs))))
            std = reference.std or 0.0
        return float(dist / std) if std > 0 else (0.0 if dist == 0 else float("inf")), None


def category_table(reference: ColumnReference, current: ColumnWindow
                   ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(keys, reference counts, current counts) over the reference's values plus one
    ``(other)`` bucket for everything else (rare tail of the reference, unseen values)."""
    keys = list(reference.counts)
    ref = np.array([reference.counts[k] for k in keys] + [reference.other_count], float)
    cur_other = sum(n for k, n in current.counts.items() if k not in reference.counts)
    cur = np.array([current.counts.get(k, 0) for k in keys] + [cur_other], float)
    return [*keys, OTHER], ref, cur


def _numeric_bins(reference: ColumnReference, current: ColumnWindow
                  ) -> tuple[np.ndarray, np.ndarray]:
    edges = reference.bin_edges
    if edges is None or edges.size < 2:
        return np.array([reference.n], float), np.array([current.n], float)
    inner = edges[1:-1]
    nbins = len(edges) - 1

    def count(values: np.ndarray) -> np.ndarray:
        # Bins [e_i, e_i+1), the last one closed, as np.histogram counted the contract's;
        # values beyond the training range fall into the outer bins.
        return np.bincount(np.searchsorted(inner, values, side="right"), minlength=nbins)

    if reference.values is not None and reference.values.size:
        ref = count(reference.values).astype(float)
    else:
        ref = np.asarray(reference.bin_counts, float)
    cur = count(current.values) if current.values is not None else np.zeros(nbins)
    return ref, cur.astype(float)


def _chi2(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Pearson's statistic of 2 x k tables; ``cur`` may hold many tables (one per row)."""
    totals = ref + cur
    n_ref, n_cur = ref.sum(axis=-1, keepdims=True), cur.sum(axis=-1, keepdims=True)
    share = totals / (n_ref + n_cur)
    e_ref, e_cur = share * n_ref, share * n_cur
    return (((ref - e_ref) ** 2 / e_ref) + ((cur - e_cur) ** 2 / e_cur)).sum(axis=-1)


_PERMUTATIONS = 10_000   # p-values down to 1e-4: below Holm's 0.05 / 100 features


def _permutation_chi2(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Pearson's statistic and its exact-in-the-limit p-value: windows of the same size
    drawn without replacement from the pooled rows (seeded: a report is reproducible)."""
    totals = (ref + cur).astype(np.int64)
    observed = float(_chi2(ref, cur))
    drawn = np.random.default_rng(0).multivariate_hypergeometric(
        totals, int(cur.sum()), size=_PERMUTATIONS).astype(float)
    null = _chi2(totals - drawn, drawn)
    # Ties up to rounding count as at least as extreme.
    extreme = int(np.count_nonzero(null >= observed * (1 - 1e-9)))
    return observed, (1 + extreme) / (_PERMUTATIONS + 1)


@register_detector
class ChiSquare(Detector):
    """Chi-squared test of homogeneity on the 2 x k table of reference and window counts.

    Categories expected fewer than 5 times in the window are pooled into one bin; when a
    bin is still expected fewer than 5 times, the p-value comes from the permutation
    distribution, as the chi-squared approximation would inflate false alarms.
    """

    name = "chisquare"
    kind = "test"
    default_threshold = 0.05

    def applies_to(self, column_type: ColumnType) -> bool:
        return column_type == "categorical"

    def statistic(self, reference: ColumnReference, current: ColumnWindow
                  ) -> tuple[float, float | None]:
        from scipy import stats

        _, ref, cur = category_table(reference, current)
        if cur.sum() == 0 or ref.sum() == 0:
            return float("nan"), None
        expected = (ref + cur) * cur.sum() / (ref.sum() + cur.sum())
        rare = expected < 5
        if rare.sum() > 1:  # one bin for the rare values: "rare values became common"
            ref = np.append(ref[~rare], ref[rare].sum())
            cur = np.append(cur[~rare], cur[rare].sum())
        keep = (ref + cur) > 0
        ref, cur = ref[keep], cur[keep]
        if len(ref) < 2:
            return 0.0, 1.0
        if ((ref + cur) * cur.sum() / (ref.sum() + cur.sum())).min() < 5:
            # A bin still expected < 5 times (a 36-row window of a column that is 99% one
            # value): the chi-squared approximation would make one rare value seen twice
            # look like drift. Its permutation distribution gives the p-value instead.
            return _permutation_chi2(ref, cur)
        chi2, p, _, _ = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
        return float(chi2), float(p)


@register_detector
class JensenShannon(Detector):
    """Jensen-Shannon distance (natural log, as scipy and Evidently) between the shares."""

    name = "jensenshannon"
    kind = "distance"
    default_threshold = 0.1

    def applies_to(self, column_type: ColumnType) -> bool:
        return column_type == "categorical"

    def statistic(self, reference: ColumnReference, current: ColumnWindow
                  ) -> tuple[float, float | None]:
        from scipy.spatial.distance import jensenshannon

        _, ref, cur = category_table(reference, current)
        if cur.sum() == 0 or ref.sum() == 0:
            return float("nan"), None
        return float(jensenshannon(ref / ref.sum(), cur / cur.sum())), None


@register_detector
class PSI(Detector):
    """Population stability index: sum of (cur - ref) * ln(cur / ref) over bins or
    categories (shares floored at 1e-4). Rule of thumb: > 0.1 moderate, > 0.2 large."""

    name = "psi"
    kind = "distance"
    default_threshold = 0.2

    def applies_to(self, column_type: ColumnType) -> bool:
        return column_type in ("numeric", "categorical")

    def statistic(self, reference: ColumnReference, current: ColumnWindow
                  ) -> tuple[float, float | None]:
        if reference.type == "numeric":
            ref, cur = _numeric_bins(reference, current)
        else:
            _, ref, cur = category_table(reference, current)
        if cur.sum() == 0 or ref.sum() == 0:
            return float("nan"), None
        r = np.maximum(ref / ref.sum(), _EPS)
        c = np.maximum(cur / cur.sum(), _EPS)
        return float(np.sum((c - r) * np.log(c / r))), None
