"""--max-latency-ms / --max-size-mb: the ensemble within a serving budget, measured on the
compiled predictor; members over it alone left out, members dropped while the ensemble is
over it, a clear error when nothing fits, bad values refused before training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.data.kinds import Task
from mlwright.exceptions import ConfigError, ServingBudgetError
from mlwright.scoring import get_metric
from mlwright.search.ensemble import Ensemble
from mlwright.search.limits import Limited, Limits, fit_ensemble, fit_refit, fitting_candidates
from mlwright.search.records import TrialRecord

FAST: dict[str, Any] = {"time_budget": 120, "n_trials": 6, "seed": 0,
                        "families": ["lightgbm", "linear", "random_forest"]}


# ---- the rules, on a meter whose figures are given (exact, no timing) ----------------------


class FakeMeter:
    """Alone: the given figures; an ensemble: the sum of its members' (as a stand-in of
    separate models roughly is)."""

    def __init__(self, limits: Limits, alone: dict[int, dict[str, float]]) -> None:
        self.limits, self.alone, self.failed = limits, dict(alone), {}
        self.capped, self.seconds, self.cap = False, 0.0, 30.0
        self.measured: list[list[int]] = []

    def measurable(self, rec: TrialRecord) -> bool:
        return True

    def single(self, rec: TrialRecord) -> dict[str, float]:
        return self.alone[rec.number]

    def ensemble(self, recs: list[TrialRecord], weights: dict[int, float]
                 ) -> dict[str, float]:
        self.measured.append(sorted(r.number for r in recs))
        return {k: sum(self.alone[r.number][k] for r in recs)
                for k in ("p50_ms", "p90_ms", "size_mb")}


    def model(self, model: Any) -> dict[str, float]:
        # A refit model: its members' figures alone, times the growth of a refit.
        trials = {m["trial"] for m in model.members}
        return {k: self.growth * sum(self.alone[t][k] for t in trials)
                for k in ("p50_ms", "p90_ms", "size_mb")}

    growth = 1.0


def _rec(n: int, family: str = "lightgbm") -> TrialRecord:
    return TrialRecord(number=n, family=family, params={}, style="tree", loss=0.0,
                       status="complete")


def _fig(ms: float, mb: float) -> dict[str, float]:
    return {"p50_ms": ms, "p90_ms": ms * 1.2, "size_mb": mb}


def _views(n: int = 4_000, seed: int = 0) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    # Three noisy views of one signal: each adds to the blend.
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    y = (truth > 0).astype(int)
    views = {}
    for t, scale in enumerate((1.0, 1.5, 2.0)):
        p = 1 / (1 + np.exp(-(truth + rng.normal(scale=scale, size=n))))
        views[t] = np.column_stack([1 - p, p])
    return y, views


def test_a_member_whose_removal_meets_the_budget_goes_at_the_least_cv_loss():
    y, oofs = _views()
    metric = get_metric("log_loss", Task.BINARY)
    mask = np.ones(len(y), dtype=bool)
    # Ensemble 0.9 ms against 0.7: dropping 1 (0.3 ms) or 2 (0.4 ms) meets it; 2 is the
    # noisiest view, so its removal costs less.
    limits = Limits(max_latency_ms=0.7)
    meter = FakeMeter(limits, {0: _fig(0.2, 1), 1: _fig(0.3, 1), 2: _fig(0.4, 1)})
    limited = Limited(limits)
    weights = fit_ensemble(meter, [_rec(t) for t in oofs], {0: 0.4, 1: 0.35, 2: 0.25},
                           oofs, y, metric, mask, limited)  # type: ignore[arg-type]
    assert [d["trial"] for d in limited.dropped] == [2]
    assert set(weights) == {0, 1} and sum(weights.values()) == pytest.approx(1.0)
    assert limited.before["p50_ms"] == pytest.approx(0.9)
    assert limited.after["p50_ms"] == pytest.approx(0.5) and not limits.over(limited.after)
    assert limited.dropped[0]["p50_ms"] == pytest.approx(0.5)  # measured after the drop
    assert meter.measured == [[0, 1, 2], [0, 1]]  # measured again after each drop


def test_when_no_single_removal_meets_it_the_costliest_member_goes_first():
    y, oofs = _views()
    metric = get_metric("log_loss", Task.BINARY)
    mask = np.ones(len(y), dtype=bool)
    # 12 MB against 5: no one removal is enough; 1 (5 MB) goes first, then 2 (4 MB) meets it.
    limits = Limits(max_size_mb=5)
    meter = FakeMeter(limits, {0: _fig(0.1, 3), 1: _fig(0.1, 5), 2: _fig(0.1, 4)})
    limited = Limited(limits)
    weights = fit_ensemble(meter, [_rec(t) for t in oofs], {0: 0.4, 1: 0.35, 2: 0.25},
                           oofs, y, metric, mask, limited)  # type: ignore[arg-type]
    assert [d["trial"] for d in limited.dropped] == [1, 2]
    assert weights == {0: 1.0} and limited.after["size_mb"] == 3


def test_a_refit_over_the_budget_loses_members_measured_on_the_refit_model():
    y, oofs = _views()
    metric = get_metric("log_loss", Task.BINARY)
    mask = np.ones(len(y), dtype=bool)
    # The stand-ins fit (2 + 1.5 = 3.5 MB against 4); the refit grows them by half (5.25).
    limits = Limits(max_size_mb=4)
    meter = FakeMeter(limits, {0: _fig(0.1, 2), 1: _fig(0.1, 1.5)})
    limited = Limited(limits)
    weights = fit_ensemble(meter, [_rec(0), _rec(1)], {0: 0.6, 1: 0.4}, oofs, y, metric,
                           mask, limited)  # type: ignore[arg-type]
    assert not limited.dropped and weights == {0: 0.6, 1: 0.4}
    meter.growth = 1.5
    members = [{"trial": t, "family": "lightgbm", "style": "tree", "weight": w,
                "estimator": None} for t, w in weights.items()]
    model = Ensemble({"tree": None}, members, Task.BINARY, [0, 1], ["x"])
    model, weights = fit_refit(meter, model, weights, oofs, y, metric, mask,  # type: ignore[arg-type]
                               limited)
    assert limited.refit["size_mb"] == pytest.approx(5.25)
    # Either removal meets it; 1 (the noisier view) costs less CV loss.
    assert [d["trial"] for d in limited.refit_dropped] == [1]
    assert weights == {0: 1.0} and [m["trial"] for m in model.members] == [0]
    assert model.members[0]["weight"] == 1.0
    assert limited.refit_after["size_mb"] == pytest.approx(3.0)
    assert limited.to_dict(metric)["within"] is True


def test_members_over_the_budget_alone_are_no_candidates_and_selection_runs_again():
    limits = Limits(max_latency_ms=1.0)
    meter = FakeMeter(limits, {0: _fig(5.0, 1), 1: _fig(0.5, 1), 2: _fig(0.8, 1)})
    pools: list[list[int]] = []

    def select(pool: list[TrialRecord]) -> dict[int, float]:
        pools.append([r.number for r in pool])
        return {i: 1 / len(pool) for i in range(len(pool))}  # picks every one

    limited = Limited(limits)
    pool, weights = fitting_candidates(meter, [_rec(0, "knn"), _rec(1), _rec(2)],  # type: ignore[arg-type]
                                       select, limited)
    assert pools == [[0, 1, 2], [1, 2]]
    assert [r.number for r in pool] == [1, 2] and set(weights) == {0, 1}
    assert limited.excluded == [{"trial": 0, "family": "knn", "why": "over the budget alone",
                                 "p50_ms": 5.0, "size_mb": 1}]


def test_nothing_fits_alone_names_the_fastest_and_how_to_fix_it():
    limits = Limits(max_latency_ms=0.1, max_size_mb=0.5)
    meter = FakeMeter(limits, {0: _fig(5.0, 0.2), 1: _fig(0.3, 2.0)})
    with pytest.raises(ServingBudgetError) as err:
        fitting_candidates(meter, [_rec(0, "knn"), _rec(1, "linear")],  # type: ignore[arg-type]
                           lambda pool: {i: 1 / len(pool) for i in range(len(pool))},
                           Limited(limits))
    message = str(err.value)
    assert "--max-latency-ms 0.1 and --max-size-mb 0.5" in message
    assert "the fastest, linear (trial 1), measured 0.3 ms p50 alone" in message
    assert "the smallest, knn (trial 0), measured 0.2 MB alone" in message
    assert "--max-latency-ms 0.45 would admit it" in message
    assert "--families lightgbm,linear" in message and "Nothing was saved" in message


@pytest.mark.parametrize("kwargs", [{"max_latency_ms": 0}, {"max_latency_ms": -2.5},
                                    {"max_size_mb": float("nan")}, {"max_size_mb": "5"},
                                    {"max_latency_ms": True}, {"max_size_mb": float("inf")}])
def test_bad_budgets_fail_before_training(telco, kwargs):
    with pytest.raises(ConfigError, match="must be a positive number of"):
        mw.train(telco, "churn", time_budget=1, **kwargs)


# ---- on real data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def measured(telco: pd.DataFrame) -> mw.TrainResult:
    """A run whose budgets hold anything: every member measured alone and together."""
    return mw.train(telco, "churn", max_latency_ms=1e6, max_size_mb=1e6, **FAST)


def test_a_generous_budget_changes_nothing_and_records_the_figures(telco, measured):
    plain = mw.train(telco, "churn", **FAST)
    np.testing.assert_array_equal(plain.predict_proba(telco.head(100)),
                                  measured.predict_proba(telco.head(100)))
    limits = measured.limits
    assert limits is not None and plain.limits is None and "max_latency_ms" not in plain.params
    assert measured.params["max_latency_ms"] == 1e6
    assert not limits["dropped"] and not limits["excluded"] and limits["within"]
    kept = {int(t) for t in limits["kept"]}
    assert kept == {m["trial"] for m in measured.model.describe()}
    assert {int(t) for t in limits["alone"]} >= kept
    shipped = limits["shipped"]
    assert shipped["on"] == "shipped model" and shipped["within"] is True
    assert shipped["p50_ms"] > 0 and shipped["size_mb"] > 0
    assert "(budget 1e+06 ms)" in shipped["text"]
    assert measured.timings["limits"] >= limits["measuring_seconds"] > 0


def test_a_size_and_latency_budget_drops_members_until_the_measured_ensemble_fits(
        telco, measured):
    before = measured.limits
    assert before is not None
    kept = {int(t) for t in before["kept"]}
    if len(kept) < 2:
        pytest.fail(f"the setup needs an ensemble of several members, got {kept}")
    # Under the measured ensemble's size (deterministic: joblib bytes), above its smallest
    # member's; latency: three times the ensemble's measured p50, at least three times any
    # one member's (generous on a loaded machine; the same rule applies to it).
    alone = {int(t): f for t, f in before["alone"].items() if int(t) in kept}
    smallest = min(f["size_mb"] for f in alone.values())
    size = max(before["before"]["size_mb"] * 0.8, smallest * 1.05)
    assert size < before["before"]["size_mb"]
    latency = 3 * before["before"]["p50_ms"]
    result = mw.train(telco, "churn", max_latency_ms=latency, max_size_mb=size, **FAST)
    limits = result.limits
    assert limits is not None and limits["dropped"]
    # What was measured after the last drop is within the budget; each step recorded.
    assert limits["after"]["size_mb"] <= size and limits["after"]["p50_ms"] <= latency
    assert limits["within"] is True
    for step in limits["dropped"]:
        assert step["family"] and step["trial"] not in {int(t) for t in limits["kept"]}
        assert {"p50_ms", "size_mb", "cv_after", "alone_p50_ms", "alone_size_mb"} <= set(step)
    assert limits["dropped"][-1]["size_mb"] == limits["after"]["size_mb"]
    assert {m["trial"] for m in result.model.describe()} == {int(t) for t in limits["kept"]}
    assert sum(limits["kept"].values()) == pytest.approx(1.0)
    # The shipped model's CV is the ensemble that is left's, from its own out-of-fold table.
    assert result.cv_score == pytest.approx(limits["cv_after"])
    assert limits["shipped"]["on"] == "shipped model" and "p50_ms" in limits["shipped"]


def test_with_a_holdout_the_stand_in_is_the_shipped_model(telco):
    # No refit with a holdout: the models measured before are the ones that ship.
    result = mw.train(telco, "churn", cv="holdout", max_size_mb=1e6, **FAST)
    limits = result.limits
    assert limits is not None and limits["alone"] and not limits["unmeasurable"]
    assert limits["refit"]["size_mb"] == pytest.approx(limits["after"]["size_mb"], rel=0.01)
    assert limits["shipped"]["within"] is True


def test_measuring_candidates_alone_stops_at_its_cap_and_says_so(telco, monkeypatch):
    import mlwright.search.limits as limits_module

    # A cap of a nanosecond: the first member picked is measured, no other candidate.
    monkeypatch.setattr(limits_module, "MEASURE_SECONDS", 1e-9)
    result = mw.train(telco, "churn", max_latency_ms=1e6, **FAST)
    limits = result.limits
    assert limits is not None and limits["capped"] is True
    assert limits["measure_cap_seconds"] == 1e-9 and len(limits["alone"]) == 1
    assert {int(t) for t in limits["kept"]} == {int(t) for t in limits["alone"]}
    assert limits["excluded"] and all(
        e["why"] == "not measured: the 1e-09 s spent measuring candidates alone ran out"
        for e in limits["excluded"])
    from mlwright.cli.train import _limits_text

    assert "candidates alone measured for at most 1e-09 s, the rest not used" in \
        _limits_text(limits)


def test_an_impossible_budget_fails_clearly_and_registers_nothing(tmp_path: Path, telco,
                                                                  monkeypatch, capsys):
    from cli_runner import run_cli  # tests/cli_runner.py

    csv = tmp_path / "telco.csv"
    telco.to_csv(csv, index=False)
    store, out = tmp_path / "store", tmp_path / "run"
    code, _, err = run_cli(["train", str(csv), "-t", "churn", "--trials", "3", "--families",
                            "lightgbm,linear", "--budget", "60", "--max-size-mb", "0.0001",
                            "--out", str(out), "--store", str(store), "--name", "t"],
                           monkeypatch, capsys)
    assert code == 2, err
    assert "No model fits --max-size-mb 0.0001 on its own" in err
    assert "the smallest, " in err and "MB alone" in err and "--families" in err
    assert not out.exists()
    if (store / "mlflow.db").exists():
        from mlwright.registry import Registry

        reg = Registry(f"sqlite:///{(store / 'mlflow.db').resolve().as_posix()}")
        assert not reg.list()


@pytest.mark.slow
def test_the_command_line_prints_the_measured_figures_against_the_budget(
        tmp_path: Path, telco, monkeypatch, capsys):
    from cli_runner import run_cli

    csv = tmp_path / "telco.csv"
    telco.to_csv(csv, index=False)
    out = tmp_path / "run"
    code, printed, err = run_cli(
        ["train", str(csv), "-t", "churn", "--trials", "3", "--families", "lightgbm,linear",
         "--budget", "60", "--max-latency-ms", "1000", "--max-size-mb", "50",
         "--no-register", "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    flat = " ".join(printed.split())
    assert "Serving budget: latency" in flat and "(budget 1000 ms)" in flat
    assert "(budget 50 MB), measured on the shipped model" in flat
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["limits"]["shipped"]["within"] is True
    assert metrics["params"]["max_size_mb"] == 50
    from mlwright.run import load_run

    assert load_run(out).limits == metrics["limits"]
    # The report says it too: the model card, the page's figures, evaluation.json.
    card = (out / "model_card.md").read_text()
    assert "Serving budget: latency" in card and "(budget 50 MB)" in card
    assert "Serving budget" in (out / "report.html").read_text()
    assert json.loads((out / "evaluation.json").read_text())["serving"]["shipped"]["within"]


@pytest.mark.parametrize("args", [["--max-latency-ms", "0"], ["--max-size-mb", "-1"],
                                  ["--max-latency-ms", "nan"]])
def test_the_command_line_refuses_bad_budgets_before_reading_data(tmp_path, monkeypatch,
                                                                   capsys, args):
    from cli_runner import run_cli

    code, _, err = run_cli(["train", str(tmp_path / "absent.csv"), "--target", "churn",
                            *args], monkeypatch, capsys)
    assert code == 2 and "must be a positive number of" in err and args[0] in err
