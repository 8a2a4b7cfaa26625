"""Metrics and their bootstrap intervals against scikit-learn, on real out-of-fold slices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import mlwright as mw
from mlwright.evaluate.scores import (
    Predictions,
    _Boot,
    bootstrap_scores,
    compute_metrics,
    decide,
    oof_predictions,
    point_metrics,
    predictions_from,
    predictive_interval,
)


def _classes(run: mw.TrainResult) -> list:
    return list(run.model.classes) if run.model.classes is not None else None


@pytest.fixture(scope="module")
def telco_p(telco_run: mw.TrainResult) -> Predictions:
    return oof_predictions(telco_run.oof, "binary", _classes(telco_run),
                           telco_run.model.threshold)[0]


@pytest.fixture(scope="module")
def ames_p(ames_run: mw.TrainResult) -> Predictions:
    return oof_predictions(ames_run.oof, "regression", None, None)[0]


@pytest.fixture(scope="module")
def hpc_p() -> Predictions:
    """Multiclass probabilities of a plain scikit-learn model on hpc_jobs (cross-validated)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from mlwright.datasets import load_suite

    df = load_suite("hpc_jobs", nrows=1500)
    X = pd.get_dummies(df.drop(columns=["class"]), dtype=float)
    classes = sorted(df["class"].unique())
    y = df["class"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    proba = cross_val_predict(LogisticRegression(max_iter=300), (X - X.mean()) / X.std(),
                              y, cv=3, method="predict_proba")
    return Predictions("multiclass", y, decide(proba, None), proba, classes)


def _sklearn_reference(p: Predictions) -> dict[str, float]:
    if p.task == "regression":
        return {"rmse": skm.root_mean_squared_error(p.y, p.pred),
                "mae": skm.mean_absolute_error(p.y, p.pred), "r2": skm.r2_score(p.y, p.pred),
                "mape": skm.mean_absolute_percentage_error(p.y, p.pred),
                "median_absolute_error": skm.median_absolute_error(p.y, p.pred)}
    out = {"accuracy": skm.accuracy_score(p.y, p.pred),
           "balanced_accuracy": skm.balanced_accuracy_score(p.y, p.pred),
           "log_loss": skm.log_loss(p.y, p.proba), "mcc": skm.matthews_corrcoef(p.y, p.pred)}
    if p.proba.shape[1] == 2:
        out.update(precision=skm.precision_score(p.y, p.pred),
                   recall=skm.recall_score(p.y, p.pred), f1=skm.f1_score(p.y, p.pred),
                   roc_auc=skm.roc_auc_score(p.y, p.proba[:, 1]),
                   average_precision=skm.average_precision_score(p.y, p.proba[:, 1]),
                   brier=skm.brier_score_loss(p.y, p.proba[:, 1]))
    else:
        for avg in ("macro", "weighted"):
            out[f"f1_{avg}"] = skm.f1_score(p.y, p.pred, average=avg)
            out[f"precision_{avg}"] = skm.precision_score(p.y, p.pred, average=avg)
            out[f"recall_{avg}"] = skm.recall_score(p.y, p.pred, average=avg)
            out[f"roc_auc_{avg}"] = skm.roc_auc_score(p.y, p.proba, multi_class="ovr",
                                                      average=avg)
    return out


@pytest.mark.parametrize("name", ["telco_p", "ames_p", "hpc_p"])
def test_point_metrics_match_sklearn(name: str, request: pytest.FixtureRequest) -> None:
    p = request.getfixturevalue(name)
    ours = point_metrics(p)
    for metric, expected in _sklearn_reference(p).items():
        assert ours[metric] == pytest.approx(expected, rel=1e-9, abs=1e-12), metric


def test_binary_labels_follow_the_model_threshold(telco_run: mw.TrainResult) -> None:
    p, rows = oof_predictions(telco_run.oof, "binary", _classes(telco_run), 0.3)
    proba1 = telco_run.oof[f"proba_{telco_run.model.classes[1]}"].to_numpy()[rows]
    assert np.array_equal(p.pred, (proba1 >= 0.3).astype(int))
    assert point_metrics(p)["recall"] > point_metrics(
        oof_predictions(telco_run.oof, "binary", _classes(telco_run), 0.7)[0])["recall"]


@pytest.mark.parametrize("name", ["telco_p", "ames_p", "hpc_p"])
def test_resample_formulas_match_sklearn_on_the_resample(
        name: str, request: pytest.FixtureRequest) -> None:
    """The weighted (vectorised) metrics of one resample equal scikit-learn's metrics on
    the rows that resample drew."""
    p = request.getfixturevalue(name)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(p), size=len(p))
    W = np.bincount(idx, minlength=len(p)).astype(float)[None, :]
    ours = {k: v[0] for k, v in _Boot(p).block(W).items()}
    resample = p.take(idx)
    reference = _sklearn_reference(resample)
    for metric, expected in reference.items():
        # Rank metrics use at most 1,024 score bins on resamples; medians are bin means.
        ranked = metric.startswith(("roc_auc", "average_precision"))
        tol = 2e-3 if ranked else 2e-2 if metric == "median_absolute_error" else 1e-9
        assert ours[metric] == pytest.approx(expected, rel=tol, abs=tol), metric


def test_intervals_contain_the_point_and_shrink_with_rows(telco_p: Predictions) -> None:
    small = compute_metrics(telco_p.take(np.arange(400)), n_boot=500)
    full = compute_metrics(telco_p, n_boot=500)
    assert full.n_rows == len(telco_p) > small.n_rows
    for name, iv in full.values.items():
        assert iv.low <= iv.value <= iv.high, name
        s = small.values[name]
        assert s.low <= s.value <= s.high, name
        assert iv.high - iv.low < s.high - s.low, name


def test_bootstrap_is_reproducible_and_fast_enough_to_be_vectorised() -> None:
    """50,000 rows x 1,000 resamples in one call (a loop over scikit-learn would take
    minutes); same seed, same draws."""
    rng = np.random.default_rng(0)
    n = 50_000
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    proba = np.column_stack([1 - s, s])
    p = Predictions("binary", y, decide(proba, None), proba, ["no", "yes"])
    a = bootstrap_scores(p, n_boot=1000, seed=1)
    b = bootstrap_scores(p, n_boot=1000, seed=1)
    assert all(len(v) == 1000 for v in a.values())
    assert np.array_equal(a["roc_auc"], b["roc_auc"])
    sd = np.std(a["roc_auc"])
    se = np.sqrt(point_metrics(p)["roc_auc"] * (1 - point_metrics(p)["roc_auc"]) / n)
    assert 0.3 * se < sd < 3 * se  # the spread of an AUC over 50k rows, not noise


def test_very_large_tables_get_fewer_resamples(telco_p: Predictions,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Resamples x rows is capped (MAX_DRAWS), never below MIN_RESAMPLES, and the metric set
    records how many it used; telco's rows stand in for a large table by lowering the cap."""
    import mlwright.evaluate.scores as scores

    n = len(telco_p)
    assert scores.affordable_resamples(1000, 40_000) == 1000     # the suite keeps 1,000
    assert scores.affordable_resamples(1000, 212_000) == 235
    assert scores.affordable_resamples(1000, 10**8) == scores.MIN_RESAMPLES
    assert scores.affordable_resamples(100, 10**8) == 100        # fewer asked: as asked
    monkeypatch.setattr(scores, "MAX_DRAWS", 300 * n)
    capped = scores.compute_metrics(telco_p, n_boot=1000)
    assert capped.n_boot == 300
    assert all(len(v) == 300 for v in bootstrap_scores(telco_p, n_boot=1000).values())
    for name, iv in capped.values.items():
        assert iv.low <= iv.value <= iv.high, name


def test_predictive_interval_reflects_the_test_size(telco_p: Predictions) -> None:
    wide = predictive_interval(telco_p, "roc_auc", 200)
    narrow = predictive_interval(telco_p, "roc_auc", 2000)
    mean_ci = compute_metrics(telco_p, n_boot=500)["roc_auc"]
    width = {k: v.interval.high - v.interval.low for k, v in (("w", wide), ("n", narrow))}
    assert width["w"] > width["n"] > 0
    assert width["w"] > 1.5 * (mean_ci.high - mean_ci.low)
    # Fold-to-fold spread widens it further when the folds disagree more than their size
    # explains.
    spread = predictive_interval(telco_p, "roc_auc", 2000, fold_scores=[0.70, 0.95, 0.8])
    assert spread.model_sd > 0
    assert spread.interval.high - spread.interval.low > width["n"]


def test_predictive_interval_covers_held_out_rows(telco_p: Predictions) -> None:
    """Split real out-of-fold rows many times into a 'CV' part and a 'test' part: the test
    score falls inside the range the CV part predicts about 95% of the time."""
    rng = np.random.default_rng(0)
    n_test, inside, trials = 300, 0, 80
    for t in range(trials):
        order = rng.permutation(len(telco_p))
        cv, test = telco_p.take(order[n_test:]), telco_p.take(order[:n_test])
        r = predictive_interval(cv, "roc_auc", n_test, n_boot=300, seed=t)
        inside += r.interval.contains(point_metrics(test)["roc_auc"])
    assert 0.85 <= inside / trials <= 1.0


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss"])
def test_predictive_interval_covers_a_test_larger_than_the_cv_rows(telco_p: Predictions,
                                                                   metric: str) -> None:
    """A holdout's CV score is measured on few rows: 'CV' rows predicting a test twice
    their size. Their own sampling error counts as much as the test's; without it about a
    quarter of the test scores fell outside (decision 0031)."""
    rng = np.random.default_rng(1)
    n_cv = len(telco_p) // 4
    n_test, inside, trials = 2 * n_cv, 0, 80
    for t in range(trials):
        order = rng.permutation(len(telco_p))
        cv, test = telco_p.take(order[:n_cv]), telco_p.take(order[n_cv:n_cv + n_test])
        r = predictive_interval(cv, metric, n_test, n_boot=300, seed=t)
        assert r.cv_sd == pytest.approx(r.sampling_sd * np.sqrt(n_test / n_cv))
        inside += r.interval.contains(point_metrics(test)[metric])
    assert 0.88 <= inside / trials <= 1.0


def test_unseen_test_labels_are_a_clear_error(telco_run: mw.TrainResult) -> None:
    from mlwright.evaluate.scores import predictions_from
    from mlwright.exceptions import MlwrightError

    raw = np.full((3, 2), 0.5)
    with pytest.raises(MlwrightError, match=r"never saw.*'Maybe'"):
        predictions_from("binary", ["Yes", "No", "Maybe"], raw, _classes(telco_run), None,
                         where="test table")


def test_headline_is_a_metric_the_report_computes() -> None:
    # Regression: a binary search on f1_macro made the report lead with "F1 (macro)", which
    # the binary report does not compute (its headline read n/a, with no honesty check).
    from mlwright.evaluate.report import headline_metric

    assert headline_metric("f1_macro", "binary") == "roc_auc"
    assert headline_metric("pr_auc", "binary") == "average_precision"
    assert headline_metric("roc_auc", "multiclass") == "roc_auc_macro"
    assert headline_metric("f1_macro", "multiclass") == "f1_macro"
    assert headline_metric("mse", "regression") == "rmse"
    assert headline_metric("neg_median_absolute_error", "regression") == "median_absolute_error"


def test_probabilities_off_one_by_float32_rounding_score_without_a_warning() -> None:
    """An ensemble of float32 members sums to one within 1e-7, past scikit-learn's
    tolerance: the report's log loss renormalises (as its bootstrap does) instead of
    printing scikit-learn's warning on the user's terminal."""
    import warnings

    rng = np.random.default_rng(0)
    exact = rng.dirichlet(np.ones(4), size=300)
    off = exact * (1 + rng.choice([-8e-8, 8e-8], size=(300, 1)))
    y = rng.integers(0, 4, size=300)
    p = predictions_from("multiclass", np.asarray(list("abcd"))[y], off, list("abcd"), None,
                         where="test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = point_metrics(p)["log_loss"]
    assert got == pytest.approx(skm.log_loss(y, exact, labels=range(4)), rel=1e-9)
