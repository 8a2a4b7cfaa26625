"""The drift-detector suite: every :class:`~mlwright.monitor._base.Detector` compares real
columns of telco_churn (a numeric and a categorical one) with their training reference, in
range, without flagging an identical window and flagging an injected shift."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from mlwright.exceptions import ConfigError
from mlwright.monitor._base import (
    DETECTORS,
    ColumnReference,
    ColumnType,
    ColumnWindow,
    Detector,
    DetectorResult,
)

__all__ = ["COLUMNS", "DetectorConformance", "reference_and_windows"]

#: column type -> the telco_churn column that stands for it.
COLUMNS: dict[ColumnType, str] = {"numeric": "monthly_charges", "categorical": "payment_method"}


@functools.cache
def reference_and_windows(column_type: ColumnType
                          ) -> tuple[ColumnReference, ColumnWindow, ColumnWindow]:
    """(reference, identical window, drifted window) for one real column, built the way
    ``monitor/reference.py`` builds them from a contract and a sample."""
    from mlwright.datasets import load_suite

    name = COLUMNS[column_type]
    values = load_suite("telco_churn", nrows=2000)[name].dropna()
    if column_type == "numeric":
        v = np.sort(values.to_numpy(dtype=float))
        probs = np.linspace(0, 1, 21)
        edges = np.unique(np.quantile(v, probs))
        ref = ColumnReference(name, "numeric", int(v.size), values=v, quantile_probs=probs,
                              quantiles=np.quantile(v, probs), bin_edges=edges,
                              bin_counts=np.histogram(v, bins=edges)[0], std=float(v.std()))
        same = ColumnWindow(name, "numeric", int(v.size), values=v.copy())
        # Injected drift: prices up by a third and shifted (a tariff change).
        moved = ColumnWindow(name, "numeric", int(v.size), values=v * 1.3 + 15.0)
        return ref, same, moved
    counts = {str(k): int(n) for k, n in values.astype(str).value_counts().items()}
    ref = ColumnReference(name, "categorical", sum(counts.values()), counts=counts,
                          closed=True)
    same = ColumnWindow(name, "categorical", ref.n, counts=dict(counts))
    # Injected drift: most customers move to the rarest payment method.
    rare = min(counts, key=lambda k: counts[k])
    shifted = {k: n // 4 for k, n in counts.items()}
    shifted[rare] += ref.n - sum(shifted.values())
    moved = ColumnWindow(name, "categorical", ref.n, counts=shifted)
    return ref, same, moved


def _check_result(detector: Detector, result: DetectorResult) -> None:
    assert isinstance(result, DetectorResult)
    assert result.detector == detector.name and result.kind == detector.kind
    assert np.isfinite(result.statistic) and result.statistic >= 0
    if detector.kind == "test":
        assert result.p_value is not None and 0.0 <= result.p_value <= 1.0
    else:
        assert result.p_value is None
    json.dumps(result.to_dict(), allow_nan=False)


class DetectorConformance:
    """Behaviour every drift detector must have. Needs a ``detector`` fixture (an instance
    built with the default threshold)."""

    def test_declares_itself(self, detector: Detector) -> None:
        assert isinstance(detector.name, str) and detector.name
        assert detector.kind in ("test", "distance")
        assert np.isfinite(detector.default_threshold) and detector.default_threshold > 0
        if detector.kind == "test":
            assert detector.default_threshold < 1  # a p-value level
        assert any(detector.applies_to(t) for t in COLUMNS)
        if detector.name in DETECTORS:
            assert isinstance(detector, DETECTORS.get(detector.name))

    @pytest.mark.parametrize("column_type", list(COLUMNS))
    def test_identical_window_is_not_drift(self, detector: Detector,
                                           column_type: ColumnType) -> None:
        if not detector.applies_to(column_type):
            pytest.skip(f"{detector.name} does not compare {column_type} columns")
        ref, same, _ = reference_and_windows(column_type)
        result = detector.score(ref, same)
        _check_result(detector, result)
        assert result.threshold == detector.default_threshold
        assert not result.drifted, f"{detector.name} flags a window identical to training"

    @pytest.mark.parametrize("column_type", list(COLUMNS))
    def test_injected_drift_is_flagged(self, detector: Detector,
                                       column_type: ColumnType) -> None:
        if not detector.applies_to(column_type):
            pytest.skip(f"{detector.name} does not compare {column_type} columns")
        ref, same, moved = reference_and_windows(column_type)
        calm, result = detector.score(ref, same), detector.score(ref, moved)
        _check_result(detector, result)
        assert result.drifted, f"{detector.name} misses an injected shift"
        if detector.kind == "test":
            assert result.p_value is not None and calm.p_value is not None
            assert result.p_value < calm.p_value
        else:
            assert result.statistic > calm.statistic

    def test_threshold_is_the_one_given(self, detector: Detector) -> None:
        column_type = next(t for t in COLUMNS if detector.applies_to(t))
        ref, _, moved = reference_and_windows(column_type)
        # A threshold no result can cross: nothing drifts.
        never = 0.0 if detector.kind == "test" else float("inf")
        result = type(detector)(threshold=never).score(ref, moved)
        assert result.threshold == never and not result.drifted

    def test_refuses_a_column_type_it_cannot_compare(self, detector: Detector) -> None:
        other = [t for t in COLUMNS if not detector.applies_to(t)]
        if not other:
            pytest.skip(f"{detector.name} compares every column type")
        ref, same, _ = reference_and_windows(other[0])
        with pytest.raises(ConfigError, match=detector.name):
            detector.score(ref, same)
