"""Per-feature drift of a window, dataset drift, and prediction drift.

Which detector: the config may name one per column type; ``"auto"`` follows Evidently's
sample-size rule, decided on the window (the reference is the training table, nearly always
large): statistical tests on small windows (<= ``monitor.small_window`` rows:
Kolmogorov-Smirnov, chi-squared), distances on large ones (normed Wasserstein,
Jensen-Shannon, both 0.1), because on large windows every test rejects for differences
too small to matter.

Multiple comparisons: a window tests every feature at once, so with ~20 features at
p < 0.05 about one would drift by chance in every window. The p-values of one window are
corrected with Holm's step-down method (controls the family-wise error rate at
``monitor.p_value``, uniformly more powerful than Bonferroni), so a window with no drift
flags any feature at most ``p_value`` of the time. Distances need no correction: their
threshold is an effect size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.monitor._base import ColumnReference, ColumnWindow, DetectorResult, get_detector
from mlwright.monitor.detectors import category_table
from mlwright.monitor.reference import Reference, category_key

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mlwright.config import MonitorConfig

__all__ = ["DatasetDrift", "FeatureDrift", "choose_detector", "feature_drift", "holm",
           "prediction_window", "window_columns"]


@dataclass
class FeatureDrift:
    name: str
    type: str
    result: DetectorResult
    n_reference: int
    n_current: int
    distribution: dict[str, Any] = field(default_factory=dict)  # shares for the charts

    @property
    def drifted(self) -> bool:
        return self.result.drifted

    @property
    def score(self) -> float:
        """Larger is more drift, comparable within a detector (sorts the report)."""
        r = self.result
        if r.kind == "test":
            p = r.p_adjusted if r.p_adjusted is not None else r.p_value
            return float(-np.log10(max(p, 1e-300))) if p is not None else 0.0
        return r.statistic if np.isfinite(r.statistic) else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "drifted": self.drifted,
                "n_reference": self.n_reference, "n_current": self.n_current,
                **self.result.to_dict(), "distribution": self.distribution}


#: Detectors' names in prose (the HTML report); others are shown as registered.
_LONG_NAMES = {"ks": "Kolmogorov-Smirnov", "chisquare": "chi-squared",
               "wasserstein": "normed Wasserstein", "jensenshannon": "Jensen-Shannon",
               "psi": "PSI"}


@dataclass
class DatasetDrift:
    drifted: bool
    n_features: int
    n_drifted: int
    share: float
    threshold: float
    method: str  # "test" (small windows), "distance" (large ones) or "mixed"
    correction: str  # applied to the tests' p-values only; "none" without tests
    #: features compared per detector; {"test": {...}, "distance": {...}}
    detectors: dict[str, dict[str, int]] = field(default_factory=dict)
    #: features not compared: name -> why (date, free text, constant, no values in window)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "skipped": [{"name": k, "reason": v}
                                             for k, v in self.skipped.items()],
                "summary": self.describe()}

    def describe(self, long: bool = False) -> str:
        """What compared the features, e.g. "distances: wasserstein (3), jensenshannon (14);
        tests: chisquare (2), holm correction". The "auto" choice is made per column on its
        non-missing values, so one window can mix tests and distances."""
        def names(counts: dict[str, int]) -> str:
            return ", ".join(f"{_LONG_NAMES.get(k, k) if long else k} ({n})"
                             for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))

        parts = []
        if self.detectors.get("distance"):
            parts.append(f"distances: {names(self.detectors['distance'])}")
        if self.detectors.get("test"):
            fix = "no correction" if self.correction == "none" else \
                f"{self.correction.capitalize() if long else self.correction} correction"
            parts.append(f"tests: {names(self.detectors['test'])}, {fix}")
        return "; ".join(parts) or "no features compared"

    def describe_skipped(self) -> str:
        """ "text (free text), created_at (date)", or "" when every feature was compared."""
        return ", ".join(f"{k} ({v})" for k, v in self.skipped.items())


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def choose_detector(column_type: str, n_current: int, config: MonitorConfig) -> str:
    configured = config.numeric_detector if column_type == "numeric" \
        else config.categorical_detector
    if configured != "auto":
        return configured
    small = n_current <= config.small_window
    if column_type == "numeric":
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"


def _threshold(name: str, config: MonitorConfig) -> float | None:
    if name == "psi":
        return config.psi_threshold
    if name in ("ks", "chisquare"):
        return config.p_value
    return config.distance_threshold


def window_columns(table: pa.Table | pd.DataFrame, reference: Reference
                   ) -> dict[str, ColumnWindow]:
    """The window's columns as detectors read them (Arrow compute: no Python per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    n_rows = table.num_rows
    out: dict[str, ColumnWindow] = {}
    for name, ref in reference.columns.items():
        if name not in table.column_names:
            out[name] = ColumnWindow(name, ref.type, 0, n_rows)
            continue
        col = table.column(name)
        if ref.type == "numeric":
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                col = _to_number(col)
            elif not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
                col = pc.cast(col, pa.float64(), safe=False)
            values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
            finite = np.isfinite(values)
            out[name] = ColumnWindow(name, "numeric", int(finite.sum()),
                                     int(n_rows - finite.sum()), values=values[finite])
        else:
            counts: dict[str, int] = {}
            dtype = reference.dtypes.get(name, "string")
            vc = pc.value_counts(col)
            for value, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(),
                                strict=True):
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    continue
                key = category_key(value, dtype)
                counts[key] = counts.get(key, 0) + int(n)
            n = sum(counts.values())
            out[name] = ColumnWindow(name, "categorical", n, n_rows - n, counts=counts)
    return out


def _to_number(col: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    # Text in a number column (only in rejected rows): unreadable values become missing.
    text = pc.cast(col, pa.string())
    ok = pc.match_substring_regex(text, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
    return pc.cast(pc.if_else(ok, text, None), pa.float64())


def distribution(ref: ColumnReference, cur: ColumnWindow, top: int = 12) -> dict[str, Any]:
    """Reference and current shares over the same bins (numeric) or categories."""
    if ref.type == "numeric":
        from mlwright.monitor.detectors import _numeric_bins

        r, c = _numeric_bins(ref, cur)
        edges = ref.bin_edges.tolist() if ref.bin_edges is not None else []
        return {"type": "bins", "edges": edges,
                "reference": (r / max(r.sum(), 1)).round(5).tolist(),
                "current": (c / max(c.sum(), 1)).round(5).tolist()}
    keys, r, c = category_table(ref, cur)
    rs, cs = r / max(r.sum(), 1), c / max(c.sum(), 1)
    order = [i for i in np.argsort(-(rs + cs))[:top] if rs[i] + cs[i] > 0]  # no empty bars
    return {"type": "categories", "labels": [keys[i] for i in order],
            "reference": rs[order].round(5).tolist(), "current": cs[order].round(5).tolist()}


def feature_drift(reference: Reference, current: dict[str, ColumnWindow],
                  config: MonitorConfig) -> tuple[list[FeatureDrift], DatasetDrift]:
    """Drift of every feature of the window, and whether the dataset drifted."""
    results: list[FeatureDrift] = []
    skipped = dict(reference.skipped)
    for name, ref in reference.columns.items():
        cur = current[name]
        if cur.n == 0:  # nothing to compare (data quality reports the missing rate)
            skipped[name] = "no values in this window"
            continue
        detector = get_detector(choose_detector(ref.type, cur.n, config),
                                _threshold(choose_detector(ref.type, cur.n, config), config))
        res = detector.score(ref, cur)
        results.append(FeatureDrift(name, ref.type, res, ref.n, cur.n, distribution(ref, cur)))
    tested = [f for f in results if f.result.kind == "test" and f.result.p_value is not None]
    correction = config.correction if tested else "none"
    if tested and config.correction != "none":
        ps = [f.result.p_value for f in tested if f.result.p_value is not None]  # all of them
        adjusted = holm(ps) if config.correction == "holm" else \
            [min(1.0, p * len(ps)) for p in ps]
        for f, p_adj in zip(tested, adjusted, strict=True):
            f.result.p_adjusted = p_adj
            f.result.drifted = bool(p_adj < f.result.threshold)
    results.sort(key=lambda f: (not f.drifted, -f.score))
    n_drifted = sum(f.drifted for f in results)
    share = n_drifted / len(results) if results else 0.0
    detectors: dict[str, dict[str, int]] = {}
    for f in results:
        used = detectors.setdefault(f.result.kind, {})
        used[f.result.detector] = used.get(f.result.detector, 0) + 1
    method = "mixed" if len(detectors) > 1 else next(iter(detectors), "distance")
    return results, DatasetDrift(bool(results) and share >= config.drift_share, len(results),
                                 n_drifted, share, config.drift_share, method, correction,
                                 detectors, skipped)


def prediction_window(values: np.ndarray | list[Any], reference: Reference) -> ColumnWindow:
    ref = reference.prediction
    if ref is not None and ref.type == "categorical":
        keys, counts = np.unique([str(v) for v in values], return_counts=True)
        return ColumnWindow("prediction", "categorical", int(counts.sum()),
                            counts=dict(zip(keys.tolist(), counts.tolist(), strict=True)))
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return ColumnWindow("prediction", "numeric", int(arr.size), values=arr)


def prediction_drift(reference: Reference, current: ColumnWindow, config: MonitorConfig
                     ) -> FeatureDrift | None:
    ref = reference.prediction
    if ref is None or current.n == 0:
        return None
    name = choose_detector(ref.type, current.n, config)
    res = get_detector(name, _threshold(name, config)).score(ref, current)
    return FeatureDrift("prediction", ref.type, res, ref.n, current.n, distribution(ref, current))
