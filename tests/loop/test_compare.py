"""Exact properties of the paired statistics, on synthetic predictions with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from mlwright.data.kinds import Task
from mlwright.loop.compare import Comparison, decide, mcnemar
from mlwright.scoring import get_metric
from mlwright.scoring.intervals import paired_bootstrap

RMSE = get_metric("rmse", Task.REGRESSION)
AUC = get_metric("roc_auc", Task.BINARY)
ACC = get_metric("accuracy", Task.BINARY)


def _binary(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.5 + (y - 0.5) * rng.uniform(0, 0.8, n) + rng.normal(0, 0.2, n), 0.01, 0.99)
    return y, np.column_stack([1 - p1, p1])


def test_identical_predictions_give_zero_and_p_one() -> None:
    y, p = _binary()
    r = paired_bootstrap(y, p, p.copy(), AUC.score, n_boot=300)
    assert r.improvement == 0.0 and r.ci_low == 0.0 and r.ci_high == 0.0
    assert r.p_value == 1.0


def test_constant_improvement_is_exact_and_margin_is_respected() -> None:
    # RMSE 1.0 against 0.5 on every resample: the improvement is exactly 0.5 (lower is better).
    y = np.linspace(0, 10, 200)
    champ, chall = y + 1.0, y - 0.5
    r = paired_bootstrap(y, champ, chall, RMSE.score, greater_is_better=False, n_boot=200)
    assert r.improvement == pytest.approx(0.5)
    assert r.ci_low == pytest.approx(0.5) and r.ci_high == pytest.approx(0.5)
    assert r.p_value == pytest.approx(1 / 201)
    below = paired_bootstrap(y, champ, chall, RMSE.score, greater_is_better=False,
                             n_boot=200, margin=0.4)
    above = paired_bootstrap(y, champ, chall, RMSE.score, greater_is_better=False,
                             n_boot=200, margin=0.6)
    assert below.p_value == pytest.approx(1 / 201) and above.p_value == 1.0


def test_swapping_models_negates_the_difference() -> None:
    y, p = _binary(seed=1)
    _, q = _binary(seed=2)
    q = 0.5 * p + 0.5 * q
    ab = paired_bootstrap(y, p, q, AUC.score, n_boot=300, seed=7)
    ba = paired_bootstrap(y, q, p, AUC.score, n_boot=300, seed=7)
    assert ab.improvement == pytest.approx(-ba.improvement)
    assert ab.ci_low == pytest.approx(-ba.ci_high) and ab.ci_high == pytest.approx(-ba.ci_low)


def test_pairing_detects_a_small_consistent_gain() -> None:
    # The challenger is right on 20 more rows out of 2000 and never worse: unpaired intervals
    # of two accuracies near 0.8 overlap widely, the paired difference does not cross zero.
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    champ_right = rng.uniform(size=2000) < 0.8
    chall_right = champ_right.copy()
    chall_right[np.flatnonzero(~champ_right)[:20]] = True

    def onehot(right: np.ndarray) -> np.ndarray:
        label = np.where(right, y, 1 - y)
        return np.eye(2)[label]

    r = paired_bootstrap(y, onehot(champ_right), onehot(chall_right), ACC.score, n_boot=500)
    assert r.improvement == pytest.approx(0.01)
    assert r.ci_low > 0 and r.p_value == pytest.approx(1 / 501)
    m = mcnemar(champ_right, chall_right)
    assert (m.champion_only, m.challenger_only) == (0, 20)
    assert m.p_value == pytest.approx(0.5 ** 20)


@pytest.mark.parametrize(("b", "c"), [(0, 10), (3, 12), (7, 7), (12, 3), (40, 60)])
def test_mcnemar_matches_the_binomial_distribution(b: int, c: int) -> None:
    a = np.array([True] * b + [False] * c + [True] * 50 + [False] * 9)
    bb = np.array([False] * b + [True] * c + [True] * 50 + [False] * 9)
    m = mcnemar(a, bb)
    n = b + c
    assert (m.champion_only, m.challenger_only) == (b, c)
    assert m.p_value == pytest.approx(binom.sf(c - 1, n, 0.5))
    two = min(1.0, 2 * min(binom.cdf(c, n, 0.5), binom.sf(c - 1, n, 0.5)))
    assert m.p_two_sided == pytest.approx(two)
    if b == c:
        assert m.p_two_sided == 1.0


def test_mcnemar_without_discordant_rows_is_p_one() -> None:
    right = np.array([True, False, True])
    assert mcnemar(right, right).p_value == 1.0


def _comparison(**kw: object) -> Comparison:
    base: dict[str, object] = dict(
        metric="roc_auc", greater_is_better=True, task="binary", n_rows=500,
        champion_version="1", challenger_version="2", champion_score=0.80,
        challenger_score=0.85, improvement=0.05, ci_low=0.02, ci_high=0.08, p_value=0.001,
        margin=0.0, n_boot=1000, mcnemar=None, slices=[], parts={})
    base.update(kw)
    return Comparison(**base)  # type: ignore[arg-type]


def test_decide_promotes_only_when_every_check_passes() -> None:
    assert decide(_comparison()).action == "promote"
    assert decide(_comparison(p_value=0.2)).action == "shadow"
    assert decide(_comparison(improvement=0.01, margin=0.02)).action == "shadow"
    assert decide(_comparison(p_value=0.2), on_refuse="discard").action == "discard"
    assert decide(_comparison(n_rows=50), min_rows=200).action == "shadow"
    worse = {"column": "plan", "value": "basic", "n": 80, "champion": 0.8,
             "challenger": 0.7, "improvement": -0.1, "enforced": True, "p_worse": 0.01}
    d = decide(_comparison(slices=[worse]))
    assert d.action == "shadow" and d.checks["no_worse_slice"] is False
    assert any("plan=basic" in r for r in d.reasons)
    small = dict(worse, enforced=False)
    assert decide(_comparison(slices=[small])).action == "promote"
    within = dict(worse, improvement=-0.01)
    assert decide(_comparison(slices=[within]), slice_tolerance=0.02).action == "promote"
    noisy = dict(worse, p_worse=0.3)  # lower, but a small slice's noise
    d = decide(_comparison(slices=[noisy]))
    assert d.action == "promote" and any("not significantly" in r for r in d.reasons)


def test_decide_requires_mcnemar_for_accuracy() -> None:
    mc = {"champion_only": 10, "challenger_only": 14, "p_value": 0.27, "p_two_sided": 0.54,
          "champion_accuracy": 0.8, "challenger_accuracy": 0.81}
    assert decide(_comparison(metric="accuracy", mcnemar=mc)).action == "shadow"
    assert decide(_comparison(metric="roc_auc", mcnemar=mc)).action == "promote"


def test_decision_to_dict_is_json_safe() -> None:
    import json

    d = decide(_comparison(ci_low=float("nan")))
    out = d.to_dict()
    json.dumps(out, allow_nan=False)
    assert out["comparison"]["ci_low"] is None and out["action"] in ("promote", "shadow")
    assert not math.isnan(out["comparison"]["improvement"])
