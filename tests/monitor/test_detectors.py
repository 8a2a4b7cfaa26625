"""The chi-squared detector's false-alarm rate on small windows of a lopsided column."""

from __future__ import annotations

import numpy as np

from mlwright.monitor._base import ColumnReference, ColumnWindow
from mlwright.monitor.detectors import ChiSquare


def test_chisquare_keeps_its_level_on_small_windows_of_rare_values() -> None:
    # Synthetic on purpose: the exact property needs windows drawn from the reference's own
    # distribution. A column like ames' Pool_QC: one value 99%, five rare ones.
    shares = np.array([0.99, 0.004, 0.002, 0.002, 0.001, 0.001])
    keys = ["none", "Ex", "Gd", "TA", "Fa", "Po"]
    reference = ColumnReference("pool", "categorical", n=100_000,
                                counts={k: int(s * 100_000) for k, s in zip(keys, shares,
                                                                            strict=True)})
    rng = np.random.default_rng(0)
    detector = ChiSquare()
    p_values = []
    for _ in range(1000):
        counts = rng.multinomial(36, shares)
        window = ColumnWindow("pool", "categorical", n=36,
                              counts={k: int(c) for k, c in zip(keys, counts, strict=True)
                                      if c})
        p_values.append(detector.statistic(reference, window)[1])
    # No drift by construction: p < 0.01 must be about 1% of windows, not a few percent
    # (a pooled bin expected 0.4 times, seen twice, gave p ~ 1e-4 before it was folded).
    assert np.mean(np.array(p_values) < 0.01) <= 0.02
    assert np.mean(np.array(p_values) < 0.001) <= 0.003
    # ...and it still sees the rare values become common in so small a window.
    shifted = ColumnWindow("pool", "categorical", n=36, counts={"none": 30, "Ex": 4, "Gd": 2})
    assert detector.statistic(reference, shifted)[1] < 0.001


def test_one_absurd_value_does_not_make_a_column_drift() -> None:
    from mlwright.datasets import load_suite
    from mlwright.monitor.detectors import Wasserstein

    charges = load_suite("telco_churn")["monthly_charges"].to_numpy(float)
    reference = ColumnReference("monthly_charges", "numeric", n=3500,
                                values=np.sort(charges[:3500]))
    detector = Wasserstein()

    def distance(values: np.ndarray) -> float:
        window = ColumnWindow("monthly_charges", "numeric", n=values.size, values=values)
        return detector.statistic(reference, window)[0]

    window = charges[3500:]
    assert distance(window) < 0.05
    assert distance(np.append(window, 1e30)) < 0.05  # was ~1e26 reference deviations
    assert distance(window * 1.3) > 0.1               # a real shift still shows
