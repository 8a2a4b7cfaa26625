"""ONNX export: parity with the Python predictor per model family and per task, on real
slices of the public suite (held-back rows plus the export's probe rows: NaN, unseen and
non-ASCII categories, empty strings, values exactly at split thresholds), and the clear
refusals of what has no exact ONNX form."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwright.datasets import load_suite
from mlwright.exceptions import ExportError
from mlwright.export.core import export_onnx, parity_rows, to_onnx
from mlwright.export.parity import PROBA_ATOL, VALUE_RTOL
from mlwright.export.runtime import OnnxPredictor
from mlwright.registry.model import LoadedModel

TASKS = {"binary": ("telco_churn", "churn"), "multiclass": ("hpc_jobs", "class"),
         "regression": ("diamonds", "price")}
TRAIN_ROWS = 450


@functools.cache
def _table(task: str, numeric_only: bool = False) -> pd.DataFrame:
    name, target = TASKS[task]
    df = load_suite(name, nrows=650, seed=1)
    if numeric_only:  # CatBoost's exporter takes no categorical features
        keep = [c for c in df.columns if c == target or df[c].dtype.kind in "fiub"]
        df = df[keep]
    return df


@functools.cache
def _loaded(task: str, family: str, numeric_only: bool = False) -> LoadedModel:
    import mlwright as mw

    df = _table(task, numeric_only)
    target = TASKS[task][1]
    # One trial, two folds: the model is what matters here, not its score.
    result = mw.train(df.iloc[:TRAIN_ROWS], target, time_budget=60, n_trials=1, cv=2,
                      families=[family], seed=0, n_jobs=1)
    return LoadedModel(model=result.model, contract=result.contract, name=f"{task}-{family}",
                       version="1")


def _held_back(task: str, numeric_only: bool = False) -> pd.DataFrame:
    df = _table(task, numeric_only)
    return df.iloc[TRAIN_ROWS:].drop(columns=TASKS[task][1]).reset_index(drop=True)


def _assert_parity(loaded: LoadedModel, rows: pd.DataFrame) -> None:
    """The export's own check holds, and its figures are the real ones."""
    exported = to_onnx(loaded, rows=rows)
    parity = exported.parity
    assert parity.ok, parity.failures[:3]
    frame = parity_rows(loaded, rows)
    assert parity.rows == len(frame) > len(rows) + 3  # the probes were added
    model = loaded.model
    ref = model.raw_predict(frame)
    pred, proba = OnnxPredictor(exported.data).predict_frame(frame)
    if str(model.task) == "regression":
        error = np.abs(pred - ref) / np.maximum(np.abs(ref), 1e-6)
        assert np.isfinite(pred).all()
    else:
        error = np.abs(proba - ref).max(axis=1)
        expected = model.predict(frame)
        differ = sum(a != b for a, b in zip(pred, expected, strict=True))
        assert differ <= parity.ties + parity.near
    tolerance = VALUE_RTOL if str(model.task) == "regression" else PROBA_ATOL
    assert (error > tolerance).sum() <= parity.near, error.max()
    assert parity.max_error <= tolerance
    # Every family's ONNX form branches as the model does, even a float32 step from a
    # threshold (LightGBM's in double): no row needs the float32 allowance.
    assert OnnxPredictor(exported.data).float32_members == []
    assert parity.near == 0


FAMILIES = ["lightgbm", "xgboost", "random_forest", "extra_trees", "hist_gb", "linear", "mlp"]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.slow
def test_parity_per_family_and_task(family: str, task: str) -> None:
    _assert_parity(_loaded(task, family), _held_back(task))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.slow
def test_catboost_parity_without_categorical_features(task: str) -> None:
    _assert_parity(_loaded(task, "catboost", True), _held_back(task, True))


@pytest.mark.slow
def test_dates_and_an_ensemble_of_styles() -> None:
    """mpls_person_search: a datetime column (year ... hour parts by epoch arithmetic), a
    tree and a linear member blended."""
    import mlwright as mw

    df = load_suite("mpls_person_search", nrows=1200, seed=2)
    result = mw.train(df.iloc[:800], "personSearch", time_budget=60, n_trials=1,
                      families=["lightgbm", "linear"], seed=0, n_jobs=1)
    loaded = LoadedModel(model=result.model, contract=result.contract, name="mpls")
    assert result.model.preps["tree"].dates_ is not None
    rows = df.iloc[800:].drop(columns="personSearch").reset_index(drop=True)
    _assert_parity(loaded, rows)
    # Records (the server's path, read without pandas) answer as their DataFrame does;
    # dates as ISO text, as JSON brings them.
    predictor = OnnxPredictor(to_onnx(loaded, rows=rows.head(5)).data)
    records = rows.head(60).astype(object).where(rows.head(60).notna(), None).to_dict(
        "records")
    for record in records:
        if record["date"] is not None:
            record["date"] = record["date"].isoformat()
    by_record, proba_records = predictor.predict_records(records)
    by_frame, proba_frame = predictor.predict_frame(rows.head(60))
    assert list(by_record) == list(by_frame)
    np.testing.assert_array_equal(proba_records, proba_frame)


def test_date_parts_are_exact_before_and_after_the_epoch() -> None:
    """The graph's civil-from-days arithmetic against DatetimeFeatures on dates from 1700
    to 2250, leap days and times included (an exact property: synthetic dates)."""
    from onnx import TensorProto, helper

    from mlwright.export.graph import _date_parts, _Graph
    from mlwright.prep.transformers import DatetimeFeatures

    rng = np.random.default_rng(0)
    seconds = rng.integers(-8_520_000_000, 8_800_000_000, 3000)
    fixed = pd.to_datetime(["1900-02-28 23:59:59", "1900-03-01 00:00:00",
                            "2000-02-29 12:30:00",
                            "1969-12-31 23:59:59", "1970-01-01 00:00:00",
                            "2100-03-01 00:00:01",
                            "1804-02-29 06:00:00"]).astype("int64") // 10**9
    seconds = np.concatenate([seconds, fixed.to_numpy()])
    stamps = pd.DataFrame({"when": pd.to_datetime(seconds, unit="s")})
    features = DatetimeFeatures().fit(stamps)
    parts = features.parts_["when"]
    assert "hour" in parts
    g = _Graph()
    outs = _date_parts(g, "when", parts, float(features.origin_["when"]))
    result = g.op("Concat", outs, axis=1)
    g.nodes.append(helper.make_node("Identity", [result], ["out"]))
    graph = helper.make_graph(
        g.nodes, "dates", [helper.make_tensor_value_info("when", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor_value_info("out", TensorProto.DOUBLE, [None, None])],
        g.initializers)
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    import onnxruntime as ort

    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"when": seconds.astype(np.float64).reshape(-1, 1)})[0]
    np.testing.assert_array_equal(got, features.transform(stamps))


# ---- refusals ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_knn_is_refused_naming_the_member_and_the_fix(tmp_path: Any) -> None:
    out = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"member 0 \(knn\).*k-nearest.*--families"):
        export_onnx(_loaded("binary", "knn"), out)
    assert not out.exists()


@pytest.mark.slow
def test_catboost_with_categorical_features_is_refused(tmp_path: Any) -> None:
    out = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"CatBoost model with categorical features.*"
                                          r"--families"):
        export_onnx(_loaded("binary", "catboost"), out)
    assert not out.exists()


@pytest.mark.slow
def test_hist_gb_categorical_splits_are_refused() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    loaded = _loaded("binary", "linear")
    model = loaded.model
    df = _table("binary")
    tree = _loaded("binary", "lightgbm").model.preps["tree"]
    X = tree.transform(df.drop(columns="churn"))
    hgb = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(
        X, df["churn"].map({model.classes_[0]: 0, model.classes_[1]: 1}))
    refused = type(model)(preps={"tree": tree}, members=[
        {"style": "tree", "weight": 1.0, "estimator": hgb, "family": "hist_gb", "trial": 0}],
        task=model.task, classes=model.classes, feature_names=model.feature_names)
    with pytest.raises(ExportError, match=r"member 0 \(hist_gb\).*categorical splits"):
        to_onnx(LoadedModel(model=refused, contract=loaded.contract))


def test_near_threshold_rows_are_exactly_the_ambiguous_ones() -> None:
    """LightGBM goes right for x > t in double; onnxmltools' form of it (the fallback for
    options the exact converter does not write) compares float32(x) with float32(t). Only
    x above t and equal to it in float32 may differ (exact property)."""
    from mlwright.export.parity import _near

    t = np.array([0.1, 2.5])  # 0.1 has no exact float32
    x = np.array([0.1, np.nextafter(0.1, 1.0), float(np.float32(0.1)), 0.09,
                  np.nextafter(0.1, 0.0), 2.5, np.nextafter(2.5, 3.0), 2.5 + 1e-6, np.nan])
    got = _near(x.reshape(-1, 1), {0: t})
    assert got.tolist() == [False, True, True, False, False, False, True, False, False]


@pytest.mark.slow
def test_an_empty_string_is_an_unseen_category_and_missing_is_missing() -> None:
    """A linear model whose training rows miss some categories has a column for missing:
    an empty string must not land there (the Python model reads it as an unseen category),
    while a missing value must."""
    import mlwright as mw

    df = _table("binary").copy()
    df.loc[df.index[:40], "contract"] = np.nan  # some training rows miss it
    result = mw.train(df.iloc[:TRAIN_ROWS], "churn", time_budget=60, n_trials=1, cv=2,
                      families=["linear"], seed=0, n_jobs=1)
    assert "__missing__" in result.model.preps["linear"].onehot_["contract"]
    loaded = LoadedModel(model=result.model, contract=result.contract, name="empty")
    rows = df.iloc[TRAIN_ROWS:].drop(columns="churn").reset_index(drop=True)
    _assert_parity(loaded, rows)
    predictor = OnnxPredictor(to_onnx(loaded, rows=rows.head(5)).data)
    probe = pd.concat([rows.head(1)] * 2, ignore_index=True)
    probe.loc[0, "contract"], probe.loc[1, "contract"] = "", None
    want = result.model.predict_proba(probe)
    assert not np.allclose(want[0], want[1])  # the two really differ
    np.testing.assert_allclose(predictor.predict_frame(probe)[1], want, atol=1e-9)
    records = probe.astype(object).where(probe.notna(), None).to_dict("records")
    np.testing.assert_allclose(predictor.predict_records(records)[1], want, atol=1e-9)
