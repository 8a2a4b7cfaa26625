"""The compiled tree walk gives the boosters' and forests' own predictions.

XGBoost: margins and values bit for bit (float32 comparisons and sums, its float32 link);
LightGBM: raw scores bit for bit (the same comparisons, the same leaf values summed in
the same order), after the sigmoid / softmax within a few ulps (numpy's exp against
libm's); scikit-learn forests: within 1e-12 of the trees' own mean. On every public
table (its tree design matrix, held-out rows), on rows that sit on the split thresholds,
and through the threaded path of large batches.
"""

from __future__ import annotations

import json
import sys
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier

from mlwright.data.kinds import Task
from mlwright.datasets import SUITE
from mlwright.prep.fast import RecordColumns
from mlwright.search import duplicate_rows, treewalk
from mlwright.search import predictor as predictor_module
from mlwright.search.families.boosting import CatBoostModel
from mlwright.search.members import _probe_rows, native_predictor
from mlwright.search.predictor import compile_predictor
from mlwright.search.treewalk import f32_at_most, forest_walker, lightgbm_walker, node_thresholds
from mlwright.search.treewalk_boosters import catboost_walker, xgboost_walker
from suite_design import suite_design

pytest.importorskip("numba")


def _design(name: str, rows: int = 2400) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                  str, list[int]]:
    """(train matrix, its target, held-out matrix, task, categorical columns) of a suite
    table through the tree preprocessing, with NaN in one cell in ten."""
    d = suite_design(name, "tree", rows=rows, seed=3, nan_share=0.1)
    return d.Xt, d.y.astype(float), d.Xh, d.task, d.categorical


def _booster(Xt: np.ndarray, y: np.ndarray, task: str, cats: list[int],
             **params: object) -> lgb.Booster:
    objective = {"regression": "regression", "binary": "binary",
                 "multiclass": "multiclass"}[task]
    extra = {"num_class": int(y.max()) + 1} if task == "multiclass" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lgb.train({"objective": objective, "num_leaves": 15, "verbose": -1,
                          "min_data_in_leaf": 5, "num_threads": 1, "seed": 0,
                          **extra, **params},
                         lgb.Dataset(Xt, y, categorical_feature=cats or "auto"),
                         num_boost_round=40)


def _assert_walk_equals_booster(booster: lgb.Booster, X: np.ndarray) -> None:
    walker = lightgbm_walker(booster)
    assert walker is not None
    raw = booster.predict(X, raw_score=True, num_threads=1)
    assert np.array_equal(walker.raw_score(X), raw)
    np.testing.assert_allclose(walker(X), booster.predict(X, num_threads=1), rtol=1e-14,
                               atol=1e-15)


@pytest.mark.parametrize("name", list(SUITE))
def test_lightgbm_walk_equals_the_booster_on_public_tables(name):
    Xt, y, Xh, task, cats = _design(name)
    booster = _booster(Xt, y, task, cats)
    _assert_walk_equals_booster(booster, Xh)
    walker = lightgbm_walker(booster)
    assert walker is not None
    categorical_nodes = int((walker.walker.arrays[5] & 1).sum())
    assert categorical_nodes > 0 or not cats  # the bitset splits are exercised
    _assert_walk_equals_booster(booster, _probe_rows(walker.walker, Xh.shape[1]))


def test_zero_as_missing_and_tiny_values_follow_lightgbm():
    Xt, y, Xh, task, cats = _design("telco_churn")
    Xt[np.random.default_rng(1).random(Xt.shape) < 0.2] = 0.0
    booster = _booster(Xt, y, task, cats, zero_as_missing=True)
    assert '"missing_type": "Zero"' in json.dumps(booster.dump_model())
    odd = Xh.copy()
    rng = np.random.default_rng(2)
    odd[rng.random(odd.shape) < 0.1] = 0.0
    odd[rng.random(odd.shape) < 0.05] = -0.0
    odd[rng.random(odd.shape) < 0.05] = 1e-36  # LightGBM reads it as 0
    _assert_walk_equals_booster(booster, odd)


def test_large_batches_are_split_over_threads_and_blocks_with_the_same_values():
    from mlwright.search import _treekernel, treewalk

    Xt, y, Xh, task, cats = _design("diamonds", rows=12_000)
    booster = _booster(Xt, y, task, cats)
    # 36,000 rows: two threads, each walking more than one block of rows.
    big = np.concatenate([Xh] * 12)
    assert len(big) // 2 > _treekernel._MAX_BLOCK
    walker = lightgbm_walker(booster)
    assert walker is not None and len(big) * walker.walker.visits >= treewalk._THREADED_WORK
    _assert_walk_equals_booster(booster, big)
    # A few hundred rows go threaded too once their work pays for the hand-off.
    rows = max(treewalk._THREADED_MIN_ROWS,
               int(np.ceil(treewalk._THREADED_WORK / walker.walker.visits)))
    assert rows < 1_000
    _assert_walk_equals_booster(booster, Xh[:rows])


def test_forest_walk_equals_the_trees_mean():
    """scikit-learn's float32 comparisons, made on float64 rows (f32_at_most)."""
    Xt, y, Xh, _, _ = _design("hpc_jobs")
    for est in (RandomForestClassifier(n_estimators=12, random_state=0, n_jobs=1),
                ExtraTreesRegressor(n_estimators=12, random_state=0, n_jobs=1)):
        est.fit(Xt, y)
        walker = forest_walker(est)
        assert walker is not None
        X = np.concatenate([Xh] * 3)  # threaded too
        expected = (est.predict_proba(X) if hasattr(est, "predict_proba")
                    else est.predict(X)[:, None])
        np.testing.assert_allclose(walker(X), expected, rtol=0, atol=1e-12)


def test_the_compiled_predictor_takes_the_walk(telco, monkeypatch):
    """Every tree member reading one design matrix is walked by one call for a few rows
    (the members' own outputs, bit for bit), folds with the same preprocessing share one
    design matrix, and the blend equals the pandas path."""
    import mlwright as mw

    result = mw.train(telco, "churn", families=["lightgbm", "xgboost", "random_forest"],
                      n_trials=3, seed=0)
    predictor = compile_predictor(result.model, result.contract)
    paths = {d["path"] for d in predictor.describe()}
    assert "lightgbm-treewalk" in paths or "forest-treewalk" in paths, paths
    X = telco.drop(columns="churn")
    records = X.head(20).to_dict("records")
    if predictor._fused:
        fused = dict(predictor._fused)
        for record in records:
            cols = RecordColumns([record], predictor.feature_names)
            together = predictor._member_outputs(cols, None, compiled=True)
            predictor._fused = {}
            apart = predictor._member_outputs(RecordColumns([record], predictor.feature_names),
                                              None, compiled=True)
            predictor._fused = fused
            for a, b in zip(together, apart, strict=True):
                assert np.array_equal(a, b)
    else:  # one tree member per design: nothing to fuse
        assert len({d["style"] for d in predictor.describe()}) == len(predictor.describe())
    for record, row in zip(records, range(20), strict=True):
        np.testing.assert_allclose(
            predictor.predict_records([record])[1],
            result.model.raw_predict(X.iloc[[row]], compiled=False), rtol=0, atol=1e-12)
    np.testing.assert_allclose(predictor.raw_frame(X),
                               result.model.raw_predict(X, compiled=False), rtol=0,
                               atol=1e-12)
    pd.testing.assert_index_equal(pd.Index(result.model.classes_),
                                  pd.Index(predictor.classes_))
    # A frame larger than a part goes through in parts, to the same predictions in order.
    whole = predictor.raw_frame(X)
    monkeypatch.setattr(predictor_module, "FRAME_CHUNK_ROWS", 7)
    np.testing.assert_allclose(predictor.raw_frame(X.iloc[::-1]), whole[::-1], rtol=0,
                               atol=1e-12)
    # A large frame of repeated rows is predicted once per distinct row, to the same values.
    walked: list[int] = []
    raw = predictor._raw
    monkeypatch.setattr(predictor, "_raw", lambda cols, frame: walked.append(
        len(frame())) or raw(cols, frame))
    monkeypatch.setattr(duplicate_rows, "MIN_ROWS", 20)
    repeated = X.iloc[np.random.default_rng(0).integers(0, 30, 3000)]
    np.testing.assert_allclose(predictor.raw_frame(repeated),
                               result.model.raw_predict(repeated, compiled=False), rtol=0,
                               atol=1e-12)
    assert sum(walked) <= 30


# ---- XGBoost ----------------------------------------------------------------------------------

def _xgboost(Xt: np.ndarray, y: np.ndarray, task: str, **params: object) -> xgb.XGBModel:
    cls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    est = cls(n_estimators=40, max_depth=5, learning_rate=0.3, n_jobs=1, random_state=0,
              **params)
    return est.fit(Xt, y.astype(int) if task != "regression" else y)


def _assert_xgboost_walk_equals_booster(est: xgb.XGBModel, X: np.ndarray,
                                        rounds: tuple[int, int] = (0, 0)) -> None:
    booster = est.get_booster()
    walker = xgboost_walker(booster, rounds)
    assert walker is not None
    for kind, ours in (("margin", walker.margin(X)), ("value", walker(X))):
        theirs = booster.inplace_predict(X, iteration_range=rounds, predict_type=kind)
        assert ours.shape == theirs.shape
        assert np.array_equal(ours, theirs, equal_nan=True), kind  # bit for bit


@pytest.mark.parametrize("name", ["telco_churn", "hpc_jobs", "diamonds"])
def test_xgboost_walk_equals_the_booster(name):
    """Binary logistic, multiclass softprob and squared error, on held-out rows with NaN,
    on rows sitting on, beside and between every float32 split condition, and through the
    threaded path."""
    Xt, y, Xh, task, _ = _design(name)
    est = _xgboost(Xt, y, task)
    _assert_xgboost_walk_equals_booster(est, Xh)
    walker = xgboost_walker(est.get_booster(), (0, 0))
    assert walker is not None
    probe = _probe_rows(walker.walker, Xh.shape[1])
    assert np.isnan(probe).any()
    _assert_xgboost_walk_equals_booster(est, probe)
    _assert_xgboost_walk_equals_booster(est, np.concatenate([Xh] * 4))  # 2,400 rows


def test_xgboost_walk_reads_float32_thresholds_exactly():
    """float64 values that round onto a split condition in float32 go where XGBoost sends
    them (right: float32(x) < condition fails), those rounding below it left."""
    Xt, y, Xh, task, _ = _design("diamonds")
    est = _xgboost(Xt, y, task)
    walker = xgboost_walker(est.get_booster(), (0, 0))
    assert walker is not None
    conditions = np.concatenate(node_thresholds(walker.walker, Xh.shape[1]))
    assert conditions.size
    rows = []
    for f, values in enumerate(node_thresholds(walker.walker, Xh.shape[1])):
        # The walk stores float64 cut points: the float32 conditions lie just above them.
        cond = np.unique(np.float32(np.nextafter(values, np.inf)))
        for c in cond[:40]:
            c64 = float(c)
            for v in (c64, np.nextafter(c64, -np.inf), np.nextafter(c64, np.inf),
                      float(np.nextafter(c, np.float32(-np.inf))),
                      (c64 + float(np.nextafter(c, np.float32(-np.inf)))) / 2):
                row = Xh[len(rows) % len(Xh)].copy()
                row[f] = v
                rows.append(row)
    _assert_xgboost_walk_equals_booster(est, np.array(rows))


def test_xgboost_walk_stops_at_the_best_iteration():
    Xt, y, Xh, _, _ = _design("telco_churn")
    est = xgb.XGBClassifier(n_estimators=200, max_depth=5, learning_rate=0.5, n_jobs=1,
                            random_state=0, early_stopping_rounds=3)
    est.fit(Xt[:1200], y[:1200].astype(int), eval_set=[(Xt[1200:], y[1200:].astype(int))],
            verbose=False)
    rounds = (0, int(est.best_iteration) + 1)
    assert rounds[1] < est.get_booster().num_boosted_rounds()
    _assert_xgboost_walk_equals_booster(est, Xh, rounds)
    predict, path = native_predictor(est, regression=False)
    assert path == "xgboost-treewalk"
    np.testing.assert_array_equal(predict(Xh[:5]), est.predict_proba(Xh[:5]))
    np.testing.assert_array_equal(predict(Xh), est.predict_proba(Xh))  # the booster's loop


def test_xgboost_forms_not_read_keep_the_booster(monkeypatch):
    Xt, y, Xh, task, _ = _design("diamonds", rows=800)
    poisson = _xgboost(Xt, np.abs(y), task, objective="count:poisson")
    assert xgboost_walker(poisson.get_booster(), (0, 0)) is None
    assert native_predictor(poisson, regression=True)[1] == "xgboost-inplace"
    dart = _xgboost(Xt, y, task, booster="dart")
    assert xgboost_walker(dart.get_booster(), (0, 0)) is None
    plain = _xgboost(Xt, y, task)
    # Without numba (its compiled module not importable) every booster keeps its own path.
    monkeypatch.setattr(treewalk, "_kernel", None)
    monkeypatch.setitem(sys.modules, "mlwright.search._treekernel", None)
    assert xgboost_walker(plain.get_booster(), (0, 0)) is None
    assert lightgbm_walker(_booster(Xt, y, task, [])) is None
    predict, path = native_predictor(plain, regression=True)
    assert path == "xgboost-inplace"
    np.testing.assert_array_equal(predict(Xh), plain.predict(Xh))


def test_float32_cut_points_match_float32_rounding():
    """An exact property of :func:`f32_at_most`: x <= t exactly when float32(x) <= b."""
    rng = np.random.default_rng(0)
    b = np.concatenate([rng.normal(0, 1e3, 500), [0.0, -0.0, 1.0, 0.5, 1e-40, -1e-40,
                                                  float(np.finfo(np.float32).max),
                                                  -float(np.finfo(np.float32).max)]]
                       ).astype(np.float32)
    b = np.concatenate([b, np.array([np.inf, -np.inf], np.float32)])
    t = f32_at_most(b)
    for x in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), b.astype(np.float64),
              np.full(len(b), np.inf), np.full(len(b), -np.inf), np.full(len(b), 1e300)):
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(x <= t, x.astype(np.float32) <= b)


# ---- CatBoost ---------------------------------------------------------------------------------

def _catboost(Xt: np.ndarray, y: np.ndarray, task: str, cats: list[int],
              one_hot_max_size: int | None = None) -> CatBoostModel:
    est = CatBoostModel(task=Task(task), n_ordinal=len(cats), iterations=30, depth=5,
                        learning_rate=0.3, one_hot_max_size=one_hot_max_size)
    return est.fit(Xt, y)


def _catboost_expected(est: CatBoostModel, X: np.ndarray, task: str) -> np.ndarray:
    return est.predict(X) if task == "regression" else est.predict_proba(X)


@pytest.mark.parametrize("one_hot_max_size", [None, 255])  # 255: large tables' setting
@pytest.mark.parametrize("name", ["telco_churn", "hpc_jobs", "diamonds"])
def test_catboost_walk_equals_the_model(name, one_hot_max_size):
    """Logloss, MultiClass and RMSE with categorical codes (one-hot and CTR splits read
    from the model's own leaf indexes), on held-out rows with NaN in one cell in ten, on
    probe rows at every float32 border, and threaded."""
    Xt, y, Xh, task, cats = _design(name)
    est = _catboost(Xt, y, task, cats, one_hot_max_size)
    walker = catboost_walker(est.model_, est._frame)
    assert walker is not None
    assert walker.n_cat == len(cats)
    assert walker.covers(Xh)
    if cats:  # the category splits are exercised
        assert int((walker.walker.arrays[5] & 1).sum()) > 0
    for X in (Xh, np.concatenate([Xh] * 4)):
        np.testing.assert_allclose(walker(X), _catboost_expected(est, X, task), rtol=1e-12,
                                   atol=1e-13)
    probe = _probe_rows(walker.walker, Xh.shape[1])
    probe[:, :len(cats)] = np.random.default_rng(0).integers(-1, 30, (len(probe), len(cats)))
    probe[::7, :len(cats)] = np.nan
    np.testing.assert_allclose(walker(probe), _catboost_expected(est, probe, task),
                               rtol=1e-12, atol=1e-13)
    predict, path = native_predictor(est, regression=task == "regression")
    assert path == "catboost-treewalk"
    np.testing.assert_allclose(predict(Xh[:3]), _catboost_expected(est, Xh[:3], task),
                               rtol=1e-12, atol=1e-13)


def test_catboost_codes_not_read_take_the_model():
    Xt, y, Xh, task, cats = _design("telco_churn")
    est = _catboost(Xt, y, task, cats)
    predict, path = native_predictor(est, regression=False)
    assert path == "catboost-treewalk"
    odd = Xh[:4].copy()
    odd[:, 0] = [-2.0, 5000.0, 1e9, -7.0]  # codes the walk has not read from the model
    assert not predict.walker.covers(odd)
    np.testing.assert_array_equal(predict(odd), est.predict_proba(odd))


def test_catboost_forms_not_read_keep_the_model():
    """A CTR over a combination of features is not walked (the path says so); neither is a
    loss without a link here."""
    import catboost

    Xt, y, Xh, _, cats = _design("mpls_person_search")
    combos = catboost.CatBoostClassifier(iterations=40, depth=6, max_ctr_complexity=4,
                                         one_hot_max_size=1, verbose=False, thread_count=1,
                                         random_seed=0, cat_features=cats,
                                         allow_writing_files=False)
    est = CatBoostModel(n_ordinal=len(cats))
    frame = est._frame
    combos.fit(frame(Xt), y)
    assert any(len(c["elements"]) > 1
               for c in _catboost_json(combos)["features_info"]["ctrs"])
    asked = []

    def to_input(rows):  # the code rows CatBoost would be asked about
        asked.append(len(rows))
        return frame(rows)

    with pytest.raises(NotImplementedError, match="combinations"):
        catboost_walker(combos, to_input)
    assert asked == []  # refused from the model's JSON, before any leaf index is computed
    est.model_, est.classes_ = combos, combos.classes_
    predict, path = native_predictor(est, regression=False)
    assert path == "catboost-1-thread (not walked: CTRs over feature combinations)"
    np.testing.assert_array_equal(predict(Xh), combos.predict_proba(frame(Xh)))
    poisson = catboost.CatBoostRegressor(iterations=5, loss_function="Poisson",
                                         verbose=False, thread_count=1, cat_features=cats,
                                         allow_writing_files=False)
    poisson.fit(frame(Xt), y)
    with pytest.raises(NotImplementedError, match="Poisson"):
        catboost_walker(poisson, frame)


def _catboost_json(model: object) -> dict:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.json"
        model.save_model(str(path), format="json")  # type: ignore[attr-defined]
        return json.loads(path.read_text())


def test_fused_walk_gives_each_model_its_own_sums():
    """fuse(): one walk of a LightGBM booster (one column per class), a forest (leaves as
    wide as the classes), an XGBoost booster (float32 sums from its base margin) and a
    CatBoost model gives each its own columns bit for bit."""
    Xt, y, Xh, task, cats = _design("hpc_jobs")
    lgbm = lightgbm_walker(_booster(Xt, y, task, cats))
    forest = forest_walker(RandomForestClassifier(n_estimators=8, random_state=0,
                                                  n_jobs=1).fit(Xt, y))
    xgbw = xgboost_walker(_xgboost(Xt, y, task).get_booster(), (0, 0))
    cb = _catboost(Xt, y, task, cats)
    cbw = catboost_walker(cb.model_, cb._frame)
    walkers = [w.walker for w in (lgbm, forest, xgbw, cbw) if w is not None]
    assert len(walkers) == 4
    fused, starts = treewalk.fuse(walkers)
    X = np.ascontiguousarray(Xh[:50])
    both = fused.raw(X)
    for w, start in zip(walkers, starts, strict=True):
        assert np.array_equal(both[:, start:start + w.n_out], w.raw(X))
    tiny = X.copy()
    tiny[0, 0] = 1e-36  # LightGBM reads it as 0: not a row for the fused walk
    assert lgbm is not None and not lgbm.walkable(tiny) and lgbm.walkable(X)


@pytest.mark.parametrize("name", ["telco_churn", "diamonds"])
def test_goes_left_follows_the_walk(name):
    """``goes_left`` (the node rule TreeSHAP walks by) reaches the walk's leaves: categorical
    bitsets, NaN and zero as missing, thresholds, on held-out and threshold rows."""
    from mlwright.search._treekernel import goes_left

    Xt, y, Xh, task, cats = _design(name, rows=1200)
    walker = lightgbm_walker(_booster(Xt, y, task, cats, zero_as_missing=name == "diamonds"))
    assert walker is not None
    arrays = walker.walker.arrays
    roots, tree_col, _, feature, threshold, dtype, left, right, start, length, bits, value \
        = arrays
    assert (dtype & 1).any() == bool(cats) and ((dtype >> 2) & 3).any()
    rows = np.vstack([Xh[:40], _probe_rows(walker.walker, Xh.shape[1])[:40]])
    out = np.zeros((len(rows), walker.walker.n_out))
    for r, x in enumerate(rows):
        for t, node in enumerate(roots):
            while left[node] != node:
                node = left[node] if goes_left(x[feature[node]], dtype[node],
                                               threshold[node], start[node], length[node],
                                               bits) else right[node]
            out[r, tree_col[t]:tree_col[t] + value.shape[1]] += value[node]
    np.testing.assert_allclose(out, walker.walker.raw(rows), rtol=1e-12, atol=1e-12)
