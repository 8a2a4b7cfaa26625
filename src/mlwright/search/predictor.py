"""The prediction hot path: an :class:`~mlwright.search.ensemble.Ensemble` compiled once.

``compile_predictor(model, contract)`` reads a fitted ensemble once (at server start, or at
the first ``Ensemble.predict``) into compiled preprocessing (:mod:`mlwright.prep.fast`) and
one native predictor per member:

* LightGBM: the compiled tree walk (:mod:`mlwright.search.treewalk`: numba, raw scores
  bit for bit the booster's, checked on probe rows at compile time) for batches from
  ``THREADED_ROWS`` rows on, else ``Booster.predict`` on a float64 array;
* XGBoost: ``Booster.inplace_predict`` with the estimator's iteration range, skipping the
  scikit-learn wrapper's checks;
* CatBoost: the wrapped model's ``predict`` with ``thread_count=1`` (its default, -1,
  starts a thread pool per call);
* logistic regression and ridge: a numpy dot product and the link function;
* random forests and extra trees: the same compiled tree walk, else all trees walked at
  once in numpy, level by level, over flat node arrays (the same comparisons as
  ``tree_.predict``: float32 inputs, NaN by ``missing_go_to_left``);
* anything else (kNN, MLP, HistGradientBoosting): the estimator's own predict on the
  compiled matrix.

``predict_records(records)`` then answers exactly what ``model.predict`` /
``model.predict_proba`` on ``pd.DataFrame(records)`` answer, and ``predict_frame(frame)``
what they answer on ``frame``. Small batches of records are read value by value
(:class:`~mlwright.prep.fast.RecordColumns`, no pandas); a DataFrame, or records from
``BATCH_RECORDS`` on when the model reads text, column by column
(:class:`~mlwright.prep.batch.FrameColumns`: one lookup per distinct value, one regex pass
per text column), then every member's native
batch predict and the blend in numpy. The same object serves ``Ensemble.predict``, the
server's micro-batches, ``/v1/predict/batch`` and ``mlwright predict``.

Compilation checks itself on a few synthetic records against the pandas path (read value
by value and column by column); a member (or preprocessing style) that does not match,
or cannot be compiled, is predicted through the pandas path (logged), and a batch holding a
value the compiled path cannot reproduce with certainty goes through the pandas path
whole. The predictor holds no mutable state: one instance serves every thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright._logging import get_logger
from mlwright.prep.fast import CompiledTable, FallbackNeeded, RecordColumns, compile_table

__all__ = ["BATCH_RECORDS", "CompiledPredictor", "RecordPredictor", "compile_predictor"]

log = get_logger(__name__)

_REGRESSION = "regression"
_CHECK_TOLERANCE = 1e-9
# From this many records on, a DataFrame and column-wise work beat reading value by value,
# for a model that reads text (one regex pass per column, not one per value). Without text,
# building the DataFrame costs more than it saves: 300 telco records, 13.4 ms of CPU
# against 8.9 value by value; 3,200 records, 104 against 82.
BATCH_RECORDS = 256
# From this many rows on, boosters predict on every core (a thread team per call costs more
# than it saves on the server's small micro-batches, and a busy machine makes it wait).
THREADED_ROWS = 2048


# ---- member predictors: design matrix -> what the estimator's predict_proba/predict gives ----

def _expit(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


class _Linear:
    """LogisticRegression / Ridge as a dot product (dense, or dense + sparse TF-IDF)."""

    def __init__(self, est: Any, regression: bool) -> None:
        from sklearn.linear_model import LogisticRegression, Ridge

        expected = Ridge if regression else LogisticRegression
        if type(est) is not expected:
            raise TypeError(type(est).__name__)
        self.coef_t = np.ascontiguousarray(np.atleast_2d(est.coef_).T)  # (features, k)
        self.intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
        self.regression = regression
        self.ravel = np.ndim(est.coef_) == 1 or self.coef_t.shape[1] == 1
        self.binary = not regression and len(est.classes_) <= 2

    def __call__(self, X: Any) -> np.ndarray:
        scores = np.asarray(X @ self.coef_t) + self.intercept
        if self.regression:
            return scores.ravel() if self.ravel else scores
        if self.binary:
            p = _expit(scores.ravel())
            return np.stack([1 - p, p], axis=1)
        from scipy.special import softmax

        return softmax(scores, axis=1)


class _Forest:
    """Every tree of a scikit-learn forest walked at once over flat node arrays."""

    def __init__(self, est: Any) -> None:
        trees = [t.tree_ for t in est.estimators_]
        sizes = np.array([t.node_count for t in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        left, right, feature, threshold, nan_left, value = [], [], [], [], [], []
        for t, off in zip(trees, offsets, strict=True):
            leaf = t.children_left == -1
            own = np.arange(t.node_count) + off
            # Leaves point at themselves, so extra levels leave them in place.
            left.append(np.where(leaf, own, t.children_left + off))
            right.append(np.where(leaf, own, t.children_right + off))
            feature.append(np.where(leaf, 0, t.feature))
            threshold.append(t.threshold)
            nan_left.append(np.asarray(t.missing_go_to_left, dtype=bool))
            value.append(t.value.reshape(t.node_count, -1))
        self.left = np.concatenate(left).astype(np.intp)
        self.right = np.concatenate(right).astype(np.intp)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold).astype(np.float64)
        self.nan_left = np.concatenate(nan_left)
        self.value = np.concatenate(value)
        self.roots = offsets.astype(np.intp)
        self.depth = max(t.max_depth for t in trees)
        self.n_trees = len(trees)

    def __call__(self, X: Any) -> np.ndarray:
        X32 = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
        n, width = X32.shape
        flat = X32.astype(np.float64).ravel()
        node = np.repeat(self.roots[:, None], n, axis=1).ravel()  # (trees * rows,)
        base = np.tile(np.arange(n, dtype=np.intp) * width, self.n_trees)
        left, right, feature, threshold, nan_left = (self.left, self.right, self.feature,
                                                     self.threshold, self.nan_left)
        for _ in range(self.depth):
            x = flat[base + feature[node]]
            go_left = (x <= threshold[node]) | (np.isnan(x) & nan_left[node])
            node = np.where(go_left, left[node], right[node])
        total = self.value[node].reshape(self.n_trees, n, -1).sum(axis=0)
        return total / self.n_trees


class _XGBoost:
    """The scikit-learn wrapper's predict / predict_proba, straight from the booster."""

    def __init__(self, est: Any, regression: bool) -> None:
        import xgboost as xgb

        cls = xgb.XGBRegressor if regression else xgb.XGBClassifier
        if type(est) is not cls or est.objective == "multi:softmax" or \
                getattr(est, "booster", None) == "gblinear":
            raise TypeError(f"{type(est).__name__} objective {est.objective}")
        # A copy set to one thread: the server spreads requests over the cores, and a
        # thread team per call waits at its barriers on a busy machine.
        self.booster = est.get_booster().copy()
        self.booster.set_param({"nthread": 1})
        self.threaded = est.get_booster().copy()  # every core, for large batches
        self.threaded.set_param({"nthread": 0})
        try:
            self.range = (0, int(est.best_iteration) + 1)
        except AttributeError:
            self.range = (0, 0)
        self.missing = est.missing
        self.regression = regression
        self.n_classes = None if regression else est.n_classes_
        self.direct = _dense_predict(self.booster, self.range, self.missing)

    def __call__(self, X: Any) -> np.ndarray:
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X)
        if len(X) >= THREADED_ROWS:
            out = self.threaded.inplace_predict(X, iteration_range=self.range,
                                                predict_type="value", missing=self.missing,
                                                validate_features=False)
        elif self.direct is not None and X.dtype == np.float64 and X.flags.c_contiguous:
            out = self.direct(X)
        else:
            out = self.booster.inplace_predict(X, iteration_range=self.range,
                                               predict_type="value", missing=self.missing,
                                               validate_features=False)
        if self.regression or (out.ndim == 2 and out.shape[1] == self.n_classes):
            return out
        return np.vstack((1.0 - out, out)).transpose()


def _dense_predict(booster: Any, iteration_range: tuple[int, int], missing: float
                   ) -> Any:
    """The C call behind ``Booster.inplace_predict`` on a dense float64 array, with its
    arguments built once: the wrapper's per-call type dispatch is ~0.2 ms of Python, half a
    one-row prediction. Uses XGBoost's own (private) C bindings, so the numbers are the
    same by construction; None where they are not there (the wrapper is used then)."""
    import ctypes
    import json

    try:
        from xgboost.core import _LIB, _check_call, c_bst_ulong
    except ImportError:
        return None
    predict = getattr(_LIB, "XGBoosterPredictFromDense", None)
    if predict is None:
        return None
    config = json.dumps({"type": 0, "training": False, "iteration_begin": iteration_range[0],
                         "iteration_end": iteration_range[1], "strict_shape": False,
                         "cache_id": 0, "missing": float(missing)}).encode()
    handle, no_proxy = booster.handle, ctypes.c_void_p()

    def call(X: np.ndarray) -> np.ndarray:
        interface = json.dumps({"data": (X.ctypes.data, True), "shape": X.shape,
                                "strides": None, "typestr": "<f8", "version": 3}).encode()
        shape = ctypes.POINTER(c_bst_ulong)()
        dims = c_bst_ulong()
        out = ctypes.POINTER(ctypes.c_float)()
        _check_call(predict(handle, interface, config, no_proxy, ctypes.byref(shape),
                            ctypes.byref(dims), ctypes.byref(out)))
        dims_out = tuple(int(shape[i]) for i in range(dims.value))
        # XGBoost owns the buffer until its next call on this thread: copy it out.
        return np.ctypeslib.as_array(out, dims_out).copy()

    return call


class _CatBoost:
    """CatBoostModel.predict / predict_proba with one thread instead of a pool per call."""

    def __init__(self, est: Any, regression: bool) -> None:
        from mlwright.search.families.boosting import CatBoostModel

        if type(est) is not CatBoostModel:
            raise TypeError(type(est).__name__)
        self.est = est
        self.regression = regression

    def __call__(self, X: Any) -> np.ndarray:
        frame = self.est._frame(X)
        threads = -1 if X.shape[0] >= THREADED_ROWS else 1
        if self.regression:
            return np.asarray(self.est.model_.predict(frame, thread_count=threads)).ravel()
        return self.est.model_.predict_proba(frame, thread_count=threads)


class _LightGBM:
    """``Booster.predict``: by the compiled tree walk (:mod:`mlwright.search.treewalk`)
    where it reproduces the booster on probe rows, else by the booster."""

    def __init__(self, est: Any, regression: bool) -> None:
        from mlwright.search.ensemble import _lightgbm_booster

        self.booster = _lightgbm_booster(est)
        if self.booster is None:
            raise TypeError(type(est).__name__)
        self.regression = regression
        self.walker = _checked_walker(self.booster)
        self.path = "lightgbm-booster" if self.walker is None else "lightgbm-treewalk"

    def __call__(self, X: Any) -> np.ndarray:
        # The walk from THREADED_ROWS on: below, LightGBM's single-thread loop was as fast
        # or faster on telco's champion (1,761 rows: 6.0 ms against 5.0 for 63 trees).
        if self.walker is not None and isinstance(X, np.ndarray) and \
                X.shape[0] >= THREADED_ROWS:
            raw = self.walker(X)
        else:
            threads = 0 if X.shape[0] >= THREADED_ROWS else 1  # 0: LightGBM's default, all
            raw = np.asarray(self.booster.predict(X, num_threads=threads), dtype=float)
        if self.regression or raw.ndim == 2:
            return raw
        return np.column_stack([1.0 - raw, raw])


def _probe_rows(walker: Any, n_features: int, rows: int = 256) -> np.ndarray:
    """Rows whose values sit on, just beside and between a model's split thresholds, with
    NaN, signed zeros, values within 1e-35 of zero and out-of-range categories among
    them: where a walk that differs from the model's own would show."""
    from mlwright.search.treewalk import node_thresholds

    rng = np.random.default_rng(0)
    specials = np.array([np.nan, 0.0, -0.0, 1e-36, -1e-36, -1.0, -0.5, 1e9, 40.0, 63.0,
                         64.0, np.inf, -np.inf])
    X = np.empty((rows, n_features))
    for f, values in enumerate(node_thresholds(walker, n_features)):
        pool = np.concatenate([values, np.nextafter(values, np.inf),
                               np.nextafter(values, -np.inf), specials])
        X[:, f] = rng.choice(pool, rows)
    return X


def _checked_walker(booster: Any) -> Any:
    """The booster's compiled walk, if it gives the booster's values on probe rows."""
    from mlwright.search.treewalk import lightgbm_walker

    try:
        walker = lightgbm_walker(booster)
    except Exception as exc:  # an unexpected model string: keep the booster
        log.debug("no compiled walk for this booster (%s)", exc)
        return None
    if walker is None:
        return None
    probe = _probe_rows(walker.walker, walker.walker.n_features)
    # Raw scores bit for bit; after the link within a few ulps (numpy's exp, not libm's).
    if not (np.array_equal(walker.raw_score(probe), booster.predict(
            probe, num_threads=1, raw_score=True), equal_nan=True)
            and np.allclose(walker(probe), booster.predict(probe, num_threads=1),
                            rtol=1e-14, atol=1e-15, equal_nan=True)):
        log.warning("the compiled walk of a LightGBM booster differs from its predict on "
                    "probe rows; the booster predicts")
        return None
    return walker


class _Native:
    """The estimator's own predict(_proba) on the compiled matrix (kNN, MLP, HGB...)."""

    def __init__(self, est: Any, regression: bool) -> None:
        from mlwright.search.ensemble import _forest_mean

        self.fn = est.predict if regression else est.predict_proba
        self.forest_mean = _forest_mean
        self.est = est

    def __call__(self, X: Any) -> np.ndarray:
        forest = self.forest_mean(self.est, X)  # what the ensemble does for odd forests
        return forest if forest is not None else self.fn(X)


def _checked_forest(est: Any) -> Any:
    """The forest's compiled walk, if it gives the numpy walk's values on probe rows."""
    from mlwright.search.treewalk import forest_walker

    walker = forest_walker(est)
    if walker is None:
        raise TypeError("numba is not installed")
    probe = _probe_rows(walker.walker, walker.walker.n_features).astype(np.float32)
    if not np.allclose(walker(probe), _Forest(est)(probe), rtol=1e-12, atol=1e-15,
                       equal_nan=True):
        raise ValueError("the compiled walk differs from the numpy walk on probe rows")
    return walker


def _is_forest(est: Any) -> bool:
    return (type(est).__module__.startswith("sklearn.ensemble")
            and hasattr(est, "estimators_") and getattr(est, "n_outputs_", 2) == 1
            and hasattr(est.estimators_[0], "tree_"))


def _native_predictor(est: Any, regression: bool) -> tuple[Any, str]:
    """The fastest exact predictor for ``est`` and its name (for logs and describe())."""
    module = type(est).__module__
    attempts: list[tuple[str, Any]] = []
    if module.startswith("lightgbm"):
        attempts.append(("lightgbm-booster", lambda: _LightGBM(est, regression)))
    if module.startswith("xgboost"):
        attempts.append(("xgboost-inplace", lambda: _XGBoost(est, regression)))
    if type(est).__name__ == "CatBoostModel":
        attempts.append(("catboost-1-thread", lambda: _CatBoost(est, regression)))
    if module.startswith("sklearn.linear_model"):
        attempts.append(("linear-numpy", lambda: _Linear(est, regression)))
    if _is_forest(est):
        attempts.append(("forest-treewalk", lambda: _checked_forest(est)))
        attempts.append(("forest-vectorized", lambda: _Forest(est)))
    for name, build in attempts:
        try:
            built = build()
            return built, getattr(built, "path", name)
        except Exception as exc:
            log.debug("no %s fast path for %s (%s); using its predict", name,
                      type(est).__name__, exc)
    return _Native(est, regression), "native"


# ---- the record predictor ------------------------------------------------------------------

class _Member:
    __slots__ = ("classes", "clip", "estimator", "expm1", "path", "predict", "style", "weight")

    def __init__(self, member: dict[str, Any], regression: bool) -> None:
        self.style = member["style"]
        self.weight = member["weight"]
        self.estimator = member["estimator"]
        self.expm1 = member.get("target_transform") == "log"
        self.clip = member.get("clip")
        self.predict, self.path = _native_predictor(self.estimator, regression)
        seen = getattr(self.estimator, "classes_", None)
        self.classes = None if regression or seen is None else np.asarray(seen).astype(int)


class CompiledPredictor:
    """Predictions for records or DataFrames, equal to the ensemble's pandas path.

    Build it with :func:`compile_predictor`. Thread-safe: nothing is mutated after
    compilation.
    """

    def __init__(self, model: Any, tables: dict[str, CompiledTable | None],
                 members: list[_Member] | None) -> None:
        self.model = model
        self._tables = tables
        self._members = members
        self.regression = str(getattr(model, "task", "")) == _REGRESSION
        self.classes_ = None if self.regression else np.asarray(model.classes_, dtype=object)
        self.feature_names = list(getattr(model, "feature_names", []))
        self._pandas_members: set[int] = set()
        reads_text = any(table is not None and table.text for table in tables.values())
        self._frame_from = BATCH_RECORDS if reads_text else None

    # -- public ---------------------------------------------------------------------------
    def predict_records(self, records: list[dict[str, Any]]
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions in the model's label space, class probabilities or None).

        Args:
            records: dicts keyed by the training column names; missing values as None or
                absent; numbers as int/float; categories as str/bool/int; dates as ISO
                strings or datetimes; text as str.
        """
        if self._members is None:
            return self._predict_pandas(self._frame(records))
        if self._frame_from is not None and len(records) >= self._frame_from:
            return self._finish(self.raw_frame(self._frame(records)))
        try:
            raw = self._raw(RecordColumns(records, self.feature_names),
                            lambda: self._frame(records))
        except FallbackNeeded as exc:
            log.debug("pandas path for this batch: %s", exc)
            return self._predict_pandas(self._frame(records))
        return self._finish(raw)

    def predict_frame(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, class probabilities or None) of a DataFrame of the training
        columns (extra columns are ignored; a missing one raises an error naming it)."""
        if self._members is None:
            return self._predict_pandas(frame)
        return self._finish(self.raw_frame(frame))

    def raw_frame(self, frame: Any) -> np.ndarray:
        """What ``Ensemble.raw_predict(frame)`` returns: probabilities (n, classes) or
        values (n,), computed column by column."""
        from mlwright.prep.batch import FrameColumns

        frame = self.model._frame(frame)  # the ensemble's own column checks and messages
        if self._members is None or len(frame) == 0:
            return self.model.raw_predict(frame, compiled=False)
        return self._raw(FrameColumns(frame), lambda: frame)

    def describe(self) -> list[dict[str, Any]]:
        """The prediction path of every member (``pandas`` where it was not compiled)."""
        if self._members is None:
            return [{"member": 0, "path": "pandas"}]
        return [{"member": i, "family": type(m.estimator).__name__, "style": m.style,
                 "path": "pandas" if i in self._pandas_members or self._tables[m.style] is None
                 else m.path} for i, m in enumerate(self._members)]

    # -- internals ------------------------------------------------------------------------
    def _finish(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.regression:
            return raw, None
        assert self.classes_ is not None
        threshold = getattr(self.model, "threshold", None)  # read live: it may be set later
        if threshold is not None and raw.shape[1] == 2:
            idx = (raw[:, 1] >= threshold).astype(int)
        else:
            idx = raw.argmax(axis=1)
        return self.classes_[idx], raw

    def _frame(self, records: list[dict[str, Any]]) -> Any:
        import pandas as pd

        frame = pd.DataFrame(records)
        absent = [c for c in self.feature_names if c not in frame.columns]
        if absent:  # absent everywhere: missing, as an absent key is in one record
            frame = pd.DataFrame(records, columns=[*frame.columns, *absent])
        return frame

    def _predict_pandas(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if self._members is not None:  # an Ensemble: its reference (pandas) path
            return self._finish(self.model.raw_predict(frame, compiled=False))
        if self.regression:
            return np.asarray(self.model.predict(frame)), None
        raw = self.model.predict_proba(frame)
        return self._finish(raw)

    def _member_outputs(self, cols: Any, make_frame: Any, *, compiled: bool
                        ) -> list[np.ndarray]:
        """Every member's output (after its target transform and clip), in order; ``cols``
        the batch's column view, ``make_frame()`` its DataFrame (for members not compiled)."""
        from mlwright.search.ensemble import _member_predict

        assert self._members is not None
        frame = None
        designs: dict[tuple[str, bool], Any] = {}
        outputs = []
        task = self.model.task
        classes = self.model.classes
        for i, m in enumerate(self._members):
            table = self._tables.get(m.style)
            fast = compiled and table is not None and i not in self._pandas_members
            key = (m.style, fast)
            if key not in designs:
                if fast:
                    assert table is not None
                    designs[key] = table.transform(cols)
                else:
                    frame = make_frame() if frame is None else frame
                    designs[key] = self.model.preps[m.style].transform(frame)
            Xt = designs[key]
            if not fast:
                outputs.append(_member_predict({"estimator": m.estimator,
                                                "target_transform": "log" if m.expm1
                                                else None,
                                                **({"clip": m.clip} if m.clip else {})},
                                               Xt, task, classes))
                continue
            out = m.predict(Xt)
            if self.regression:
                out = np.asarray(out, dtype=float).ravel()
                out = np.expm1(out) if m.expm1 else out
                out = np.clip(out, *m.clip) if m.clip is not None else out
            else:
                out = self._full_proba(np.asarray(out, dtype=float), m.classes)
            outputs.append(out)
        return outputs

    def _full_proba(self, proba: np.ndarray, seen: np.ndarray | None) -> np.ndarray:
        assert self.classes_ is not None
        n_classes = len(self.classes_)
        if seen is None:
            seen = np.arange(proba.shape[1])
        if proba.shape[1] == n_classes and np.array_equal(seen, np.arange(n_classes)):
            return proba
        out = np.zeros((proba.shape[0], n_classes))
        out[:, seen] = proba
        return out

    def _raw(self, cols: Any, make_frame: Any) -> np.ndarray:
        total: np.ndarray | None = None
        assert self._members is not None
        for m, out in zip(self._members, self._member_outputs(cols, make_frame,
                                                              compiled=True),
                          strict=True):
            total = out * m.weight if total is None else total + out * m.weight
        assert total is not None
        return total

    def _self_check(self, records: list[dict[str, Any]]) -> None:
        """Members whose compiled output differs from the pandas path on ``records`` take
        the pandas path from now on."""
        from mlwright.prep.batch import FrameColumns

        frame = self._frame(records)
        try:
            fast = self._member_outputs(RecordColumns(records, self.feature_names),
                                        lambda: frame, compiled=True)
        except FallbackNeeded as exc:
            log.warning("self-check records were not compilable (%s)", exc)
            return
        slow = self._member_outputs(None, lambda: frame, compiled=False)
        # The column-wise (batch) path must agree too: the same records, as a frame.
        batch = self._member_outputs(FrameColumns(frame), lambda: frame, compiled=True)
        assert self._members is not None
        for i, (a, c, b) in enumerate(zip(fast, batch, slow, strict=True)):
            if not (_same(a, b) and _same(c, b)):
                log.warning("compiled member %d (%s, %s path) differs from the pandas path; "
                            "it will predict through pandas", i,
                            type(self._members[i].estimator).__name__, self._members[i].path)
                self._pandas_members.add(i)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=0, atol=_CHECK_TOLERANCE,
                                              equal_nan=True)


def _check_records(model: Any, contract: Any) -> list[dict[str, Any]]:
    """A few records touching every compiled construct: all missing, known values,
    unseen categories, odd numbers, dates and text."""
    columns: dict[str, list[Any]] = {}
    for prep in model.preps.values():
        plan = prep.plan
        for c in plan.numeric:
            columns[c] = [0, 1.5, -3.25e6, float("inf")]
        for c in [*plan.categorical, *plan.high_cardinality]:
            known = [*getattr(prep, "ordinal_", {}).get(c, {}),
                     *getattr(prep, "onehot_", {}).get(c, {}),
                     *getattr(prep, "target_enc_", {}).get(c, ({}, None))[0]]
            known = [k for k in known if not k.startswith("__")] or ["x"]
            columns[c] = [known[0], known[-1], "__never_seen__", known[len(known) // 2]]
        for c in plan.boolean:
            positive = prep.bool_.get(c, (None, 0.0))[0]
            columns[c] = ([positive, "__other__", positive, True] if positive is not None
                          else [True, False, "no", "yes"])
        for c in plan.datetime:
            columns[c] = ["2016-03-04T05:06:07Z", "2019-12-31", "2018-07-01T12:00:00+02:00",
                          "2020-02-29 23:59:59.5"]
        for c in plan.text:
            columns[c] = ["Great rally tonight! #MAGA @user https://t.co/x", "the", "",
                          "Thank you very much for the crooked fake news!!"]
    if contract is not None:
        for c in columns:
            try:
                categories = contract.column(c).categories
            except Exception:
                continue
            if categories:
                columns[c][3] = categories[0]
    rows = [{c: v[i] for c, v in columns.items()} for i in range(4)]
    rows.append(dict.fromkeys(columns))
    return rows


RecordPredictor = CompiledPredictor  # its name before it took DataFrames too


def compile_predictor(model: Any, contract: Any = None) -> CompiledPredictor:
    """Compile a fitted model for record prediction (call once, at server start).

    Args:
        model: a fitted :class:`~mlwright.search.ensemble.Ensemble`. Any other estimator
            gets a predictor that goes through ``pd.DataFrame(records)`` (same interface).
        contract: the model's :class:`~mlwright.data.contract.Contract`, if at hand; its
            categories and ranges enrich the self-check records.

    Returns:
        a :class:`CompiledPredictor`; ``predict_records(records)`` and
        ``predict_frame(frame)`` return (predictions, class probabilities in
        ``model.classes_`` order, or None for regression).
    """
    from mlwright.search.ensemble import Ensemble

    if not isinstance(model, Ensemble):
        log.debug("%s is not an Ensemble: records predicted through pandas",
                  type(model).__name__)
        return CompiledPredictor(model, {}, None)
    regression = model.task == _REGRESSION
    tables: dict[str, CompiledTable | None] = {}
    for style, prep in model.preps.items():
        try:
            tables[style] = compile_table(prep)
        except Exception as exc:
            log.debug("preprocessing %r not compiled (%s); its members use pandas", style, exc)
            tables[style] = None
    members = [_Member(m, regression) for m in model.members]
    predictor = CompiledPredictor(model, tables, members)
    predictor._self_check(_check_records(model, contract))
    return predictor
