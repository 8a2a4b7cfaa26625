"""The compiled predictor answers exactly what the pandas (reference) path answers.

Every suite table gets an ensemble holding one member of every family that supports it
(small fits, equal weights), so each compiled construct (ordinal / one-hot / target
encoding, booleans, dates, text scores and sparse TF-IDF, every fast member path) is
compared with the reference ``Ensemble.raw_predict(pd.DataFrame(records), compiled=False)``
on held-out rows, with missing values, unseen categories and absent keys injected; and so is
the column-wise batch path (``predict_frame``, ``Ensemble.predict``) on the typed DataFrame
itself, with NaN, unseen categories, empty and non-ASCII text injected.
"""

from __future__ import annotations

import datetime as dt
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

import mlwright as mw
from mlwright.data.contract import learn_contract
from mlwright.data.kinds import ColumnKind, Task
from mlwright.datasets import SUITE, load_suite
from mlwright.prep import build_preprocessor, plan_columns
from mlwright.prep.fast import RecordColumns, compile_table
from mlwright.search._base import FitContext, get_family
from mlwright.search.ensemble import Ensemble
from mlwright.search.predictor import compile_predictor

TOL = 1e-9
SMALL = {"lightgbm": {"n_estimators": 40}, "xgboost": {"n_estimators": 40},
         "catboost": {"iterations": 60}, "hist_gb": {"max_iter": 30},
         "mlp": {"width": 16, "depth": 1}}
FAMILIES = ["lightgbm", "xgboost", "catboost", "hist_gb", "random_forest", "extra_trees",
            "linear", "knn", "mlp"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # OpenMP pools (HistGradientBoosting, BLAS) spin against each other on a busy machine;
    # the served model predicts single-threaded anyway.
    with threadpool_limits(1):
        yield


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and v != v else
                 v.isoformat() if isinstance(v, pd.Timestamp) else v)
             for k, v in row.items()} for row in frame.to_dict("records")]


def _ensemble(df: pd.DataFrame, target: str, task: str) -> tuple[Ensemble, Any]:
    contract = learn_contract(df, target=target, task=task)
    X = df.drop(columns=target)
    plan = plan_columns({c: ColumnKind(contract.kinds[c]) for c in X.columns})
    raw_y = df[target].to_numpy()
    classes = None if task == "regression" else sorted(pd.unique(raw_y))
    y = raw_y.astype(float) if classes is None else np.searchsorted(classes, raw_y)
    preps, members = {}, []
    for name in FAMILIES:
        family = get_family(name)
        style = family.prep_style
        if style not in preps:
            prep = build_preprocessor(plan, style, task=task)
            preps[style] = (prep, prep.fit_transform(X, y))
        Xt = preps[style][1]
        ctx = FitContext(task=Task(task), n_classes=len(classes or []), n_rows=len(y),
                         n_features=Xt.shape[1], sparse=sp.issparse(Xt),
                         n_ordinal=plan.n_ordinal if style == "tree" else 0,
                         has_text=plan.has_text, n_jobs=1)
        if not family.supports(ctx):
            continue
        configs = family.default_configs(ctx)
        params = {k.split("__", 1)[1]: v for k, v in (configs[0] if configs else {}).items()}
        est = family.build({**params, **SMALL.get(name, {})}, ctx)
        if name in ("random_forest", "extra_trees"):
            est.set_params(n_estimators=15, n_jobs=1)
        elif name == "linear" and classes is not None:
            est.set_params(max_iter=100)  # converged or not, the path is the same
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence of the tiny fits
            family.fit(est, Xt, y, ctx)
        member = {"family": name, "trial": len(members), "style": style, "estimator": est,
                  "weight": 1.0, "target_transform": None}
        if classes is None:
            member["clip"] = (float(y.min()), float(y.max()))
        members.append(member)
    if classes is None and (y > 0).all():  # a log-target member, as the engine makes
        family = get_family("lightgbm")
        est = family.build({"n_estimators": 30}, ctx_tree := FitContext(
            task=Task.REGRESSION, n_classes=0, n_rows=len(y), n_features=1, n_jobs=1,
            n_ordinal=plan.n_ordinal))
        family.fit(est, preps["tree"][1], np.log1p(y), ctx_tree)
        members.append({"family": "lightgbm", "trial": len(members), "style": "tree",
                        "estimator": est, "weight": 1.0, "target_transform": "log",
                        "clip": (float(y.min()), float(y.max()))})
    for m in members:
        m["weight"] = 1.0 / len(members)
    model = Ensemble({k: v[0] for k, v in preps.items()}, members, task, classes,
                     list(X.columns))
    return model, contract


def _odd(records: list[dict[str, Any]], model: Ensemble, seed: int) -> list[dict[str, Any]]:
    """Copies with missing values, unseen categories and absent keys injected."""
    rng = np.random.default_rng(seed)
    plan = next(iter(model.preps.values())).plan
    cats = [*plan.categorical, *plan.high_cardinality, *plan.boolean]
    out = []
    for r in records:
        r = dict(r)
        for c in list(r):
            u = rng.random()
            if u < 0.15:
                r[c] = None
            elif u < 0.2:
                del r[c]
            elif u < 0.3 and c in cats:
                r[c] = "never seen before"
        out.append(r)
    return out


@pytest.fixture(scope="module", params=list(SUITE))
def case(request: pytest.FixtureRequest
         ) -> tuple[Ensemble, Any, list[dict[str, Any]], pd.DataFrame]:
    spec = SUITE[request.param]
    df = load_suite(spec.name, nrows=1800, seed=1)
    task = "regression" if spec.task == "forecasting" else spec.task
    train, test = df.iloc[:1500], df.iloc[1500:]
    model, contract = _ensemble(train.reset_index(drop=True), spec.target, task)
    records = _records(test.drop(columns=spec.target))
    return (model, contract, records + _odd(records, model, seed=len(spec.name)),
            test.drop(columns=spec.target).reset_index(drop=True))


def _reference(model: Ensemble, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, raw output) of the pandas path the compiled one is held to."""
    raw = model.raw_predict(frame, compiled=False)
    if model.task == "regression":
        return raw, raw
    if model.threshold is not None and raw.shape[1] == 2:
        return model.classes_[(raw[:, 1] >= model.threshold).astype(int)], raw
    return model.classes_[raw.argmax(axis=1)], raw


def _check(model: Ensemble, pred: Any, proba: Any, frame: pd.DataFrame) -> None:
    expected_pred, expected_raw = _reference(model, frame)
    if model.task == "regression":
        assert proba is None
        np.testing.assert_allclose(pred, expected_pred, rtol=0, atol=TOL * np.abs(
            expected_pred).max())
    else:
        np.testing.assert_allclose(proba, expected_raw, rtol=0, atol=TOL)
        assert list(pred) == list(expected_pred)


def _assert_same(model: Ensemble, predictor: Any, records: list[dict[str, Any]]) -> None:
    pred, proba = predictor.predict_records(records)
    _check(model, pred, proba, pd.DataFrame(records, columns=model.feature_names))


def test_compiled_predictions_equal_the_pandas_path(case):
    model, contract, records, _ = case
    predictor = compile_predictor(model, contract)
    paths = {d["family"]: d["path"] for d in predictor.describe()}
    # Every built-in family compiles: a silent fallback would hide a slow hot path.
    assert "pandas" not in paths.values(), paths
    _assert_same(model, predictor, records)
    for r in records[::60]:  # one record at a time: no batch-wide dtype inference
        _assert_same(model, predictor, [r])


def test_compiled_tables_equal_tableprep(case):
    model, _, records, _ = case
    for prep in model.preps.values():
        frame = pd.DataFrame(records, columns=model.feature_names)
        expected = prep.transform(frame)
        got = compile_table(prep).transform(RecordColumns(records))
        assert sp.issparse(got) == sp.issparse(expected)
        if sp.issparse(got):
            got, expected = got.toarray(), expected.toarray()
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL, equal_nan=True)


def _odd_frame(frame: pd.DataFrame, model: Ensemble, seed: int) -> pd.DataFrame:
    """The typed frame with NaN, unseen categories, empty and non-ASCII text injected."""
    rng = np.random.default_rng(seed)
    plan = next(iter(model.preps.values())).plan
    odd = frame.copy()
    for c in odd.columns:
        hit = rng.random(len(odd))
        odd[c] = odd[c].astype(object).where(hit >= 0.15, None)
        if c in [*plan.categorical, *plan.high_cardinality]:
            odd.loc[hit > 0.9, c] = "never seen before"
        if c in plan.text:
            odd.loc[hit > 0.8, c] = ""
            odd.loc[hit > 0.9, c] = "Ünïcödé café — naïve 東京 ΣΑΣ! #émoji 🎉 @ÿou"
    for c in plan.datetime:  # back to the column's own type, with the missing values
        odd[c] = pd.to_datetime(odd[c], utc=True)
    return odd


def test_batch_path_equals_the_pandas_path(case, monkeypatch):
    """The column-wise path (DataFrame in: Ensemble.predict, predict_frame) on the typed
    table, as given and with odd values, and on the records' frame (strings for dates);
    boosters on every core, as for large batches."""
    import mlwright.search.members as members

    monkeypatch.setattr(members, "THREADED_ROWS", 1)
    model, contract, records, frame = case
    predictor = compile_predictor(model, contract)
    assert "pandas" not in {d["path"] for d in predictor.describe()}
    for batch in (frame, _odd_frame(frame, model, seed=len(frame)),
                  pd.DataFrame(records, columns=model.feature_names)):
        pred, proba = predictor.predict_frame(batch)
        _check(model, pred, proba, batch)
        expected = _reference(model, batch)[1]
        np.testing.assert_allclose(model.raw_predict(batch), expected, rtol=0,
                                   atol=TOL * max(1.0, float(np.abs(expected).max())))
    assert model.__dict__["_compiled_"][1] is not None  # Ensemble.predict went compiled


def _typed_table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    stamps = pd.Timestamp("2015-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 2000 * 24, n), unit="h")
    words = np.array(["good", "bad", "great", "awful", "fine", "#tag", "@you", "!"])
    return pd.DataFrame({
        "code": rng.integers(1, 6, n),                       # integer-coded categories
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "flag": rng.choice([True, False], n),
        "yes_no": rng.choice(["Yes", "No"], n),
        "amount": rng.normal(50, 20, n),
        "count": rng.integers(0, 100, n),
        "when": stamps,
        "note": [" ".join(rng.choice(words, 6)) for _ in range(n)],
        "y": rng.choice(["a", "b", "c"], n),
    })


@pytest.fixture(scope="module")
def typed() -> tuple[Ensemble, Any]:
    df = _typed_table()
    return _ensemble(df, "y", "multiclass")


@pytest.mark.parametrize("batch", [
    [{"code": 3, "when": "2016-05-01T10:00:00Z"}, {"code": None, "when": None}],  # 3 -> "3.0"
    [{"code": 3.0, "plan": "pro", "flag": 1, "yes_no": True}],
    [{"code": True, "flag": "yes", "count": True, "amount": 2**70}],
    [{"when": "2016-05-01"}, {"when": "2016-05-01 10:00:00+05:30"},
     {"when": "2017-02-03T04:05:06.123456"}, {"when": dt.datetime(2016, 1, 1, 12)}],
    [{"when": dt.datetime(2016, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3)))}],
    # Timestamps, as records built from a DataFrame carry them: naive, aware, nanoseconds.
    [{"when": pd.Timestamp("2016-05-01 10:00:00.000000123")}, {"when": pd.NaT}],
    [{"when": pd.Timestamp("2016-05-01 10:00", tz="Europe/Paris")},
     {"when": pd.Timestamp("1999-12-31 23:59:59.999999999", tz="UTC")}],
    [{"when": "May 1st 2016"}, {"when": "2016-02-30"}, {"when": "not a date"}],  # pandas
    [{"amount": "12.5", "note": 42}, {"amount": float("nan"), "note": None}],     # pandas
    [{"note": "good good bad\x00"}, {"note": ""}, {"note": "unknownword"}],
    [{}],                                                                         # all absent
])
def test_awkward_values_follow_pandas(typed, batch):
    model, contract = typed
    predictor = compile_predictor(model, contract)
    _assert_same(model, predictor, batch)
    frame = pd.DataFrame(batch, columns=model.feature_names)
    _check(model, *predictor.predict_frame(frame), frame)


def test_timestamps_are_read_value_by_value():
    from mlwright.prep.fast import RecordColumns

    stamp = pd.Timestamp("2016-05-01 10:00:00.000000123", tz="Europe/Paris")
    got = RecordColumns([{"when": stamp}, {"when": None}], ["when"]).datetimes("when")
    assert got[0] == stamp.tz_convert("UTC").tz_localize(None).to_datetime64()  # with its ns
    assert np.isnat(got[1])


def test_awkward_text_in_a_batch(typed):
    """Text the batch tokeniser must treat as scikit-learn does: empty, missing, non-ASCII
    (final sigma, CJK, emoji), NUL inside (the one-pass tokeniser falls back) and at the end."""
    model, contract = typed
    notes = ["", None, "ΣΑΣ ΟΔΟΣ good", "東京 great café", "good\x00bad", "bad\x00",
             "Ünïcödé!!! #tag @you", "ǅ İstanbul ß"]
    frame = _typed_table(len(notes)).drop(columns="y").assign(note=notes)
    predictor = compile_predictor(model, contract)
    _check(model, *predictor.predict_frame(frame), frame)
    no_nul = frame[~frame["note"].fillna("").str.contains("\x00")]
    _check(model, *predictor.predict_frame(no_nul), no_nul)


def test_trained_model_with_threshold_and_threads(telco):
    result = mw.train(telco, "churn", families=["lightgbm", "linear"], n_trials=3,
                      time_budget=20, threshold=0.3)
    model = result.model
    predictor = model.compile(result.contract)
    records = _records(telco.drop(columns="churn").tail(64))
    _assert_same(model, predictor, records)
    # Read-only after compilation: threads get the answers one thread gets.
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda r: predictor.predict_records([r])[1], records))
    np.testing.assert_allclose(np.vstack(outs), predictor.predict_records(records)[1],
                               rtol=0, atol=TOL)
    pickle.dumps(predictor.model)  # the predictor is rebuilt at load, the model pickles
    frame = telco.drop(columns="churn")
    expected = model.predict(frame)  # compiled (and cached) on the first call
    assert "_compiled_" in model.__dict__
    loaded = pickle.loads(pickle.dumps(model))
    assert "_compiled_" not in loaded.__dict__  # not pickled: rebuilt on first use
    assert list(loaded.predict(frame)) == list(expected) == list(_reference(model, frame)[0])


def test_any_other_estimator_goes_through_pandas(telco):
    from sklearn.dummy import DummyClassifier

    X = telco.drop(columns="churn")
    dummy = DummyClassifier(strategy="prior").fit(X, telco["churn"])
    pred, proba = compile_predictor(dummy).predict_records(_records(X.head(3)))
    assert proba is not None and proba.shape == (3, 2)
    assert set(pred) <= set(dummy.classes_)


@pytest.mark.parametrize("values", [
    [0, 1, 1, 0], [3, None], [3, float("nan")], [2.0, 1.5, None], [1, 2.5],
    [2**63, 1], [2**63, None], [2**63, 1.5], [-(2**63), 0.5], [None, float("nan")],
    [float("inf"), -0.0, 7], [2**64 - 1, None], [2**64, None], [2**63, -1, None],
    [3, "3", None], [True, 1, 2.5],
])
def test_number_categories_are_labelled_as_pandas_labels_them(values):
    """Numbers in a category column, read value by value, get the labels of the column
    pandas builds from the records (int64; float64 when one is a float or missing, ints up
    to uint64 included; object past them, or beside strings and booleans)."""
    from mlwright.prep.fast import RecordColumns
    from mlwright.prep.table import _labels as frame_labels

    records = [{"code": v} for v in values]
    got = RecordColumns(records, ["code"]).labels("code")
    assert got == list(frame_labels(pd.DataFrame(records)["code"]))
