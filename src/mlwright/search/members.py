"""One native batch predictor per ensemble member: a design matrix in, what the estimator's
``predict_proba`` / ``predict`` gives out, without the scikit-learn wrappers' per-call checks.

:func:`native_predictor` picks the fastest exact path for an estimator (see
:mod:`mlwright.search.predictor` for the list); a path that cannot be built, or whose compiled
tree walk differs from the estimator on probe rows, falls back to the estimator's own predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright._logging import get_logger

__all__ = ["THREADED_ROWS", "native_predictor"]

log = get_logger(__name__)

# From this many rows on, boosters predict on every core (a thread team per call costs more
# than it saves on the server's small micro-batches, and a busy machine makes it wait).
THREADED_ROWS = 2048
# Below this many tree-row visits a booster's compiled walk beats the booster's own call,
# whose fixed cost is ~150 µs (XGBoost) or ~40 µs (LightGBM) of setup; above it their
# predictors' tuned loops (XGBoost's ~25 ns per tree and row against the walk's ~50) win
# until the walk goes threaded. One telco row: 16 µs against 160 (XGBoost, 38 trees).
WALK_VISITS = 4096
# From this many trees the walk beats LightGBM's single-thread loop at every batch size
# (one thread, 32-2,000 rows: hpc_jobs' 684 trees 1.0-1.9x, diamonds' 1,351 1.5-3.6x,
# ames' 275 1.2-1.45x, mpls' 121 1.05-1.35x; telco's 63 trees 0.92x from 100 rows).
_LIGHTGBM_WALKS_FROM = 100


# ---- member predictors: design matrix -> what the estimator's predict_proba/predict gives ----

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
        from scipy.special import expit, softmax  # what predict_proba calls

        self.expit, self.softmax = expit, softmax

    def __call__(self, X: Any) -> np.ndarray:
        scores = np.asarray(X @ self.coef_t) + self.intercept
        if self.regression:
            return scores.ravel() if self.ravel else scores
        if self.binary:
            p = self.expit(scores.ravel())
            out = np.empty((p.shape[0], 2))
            out[:, 1] = p
            out[:, 0] = 1 - p
            return out
        return self.softmax(scores, axis=1)


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
        self.walker = _checked_xgboost(self.booster, self.range, self.missing)
        self.path = "xgboost-inplace" if self.walker is None else "xgboost-treewalk"

    def __call__(self, X: Any) -> np.ndarray:
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X)
        if self.walker is not None and X.dtype == np.float64 and \
                len(X) * self.walker.walker.n_trees <= WALK_VISITS:
            out = self.walker(X)
        elif len(X) >= THREADED_ROWS:
            out = self.threaded.inplace_predict(X, iteration_range=self.range,
                                                predict_type="value", missing=self.missing,
                                                validate_features=False)
        elif self.direct is not None and X.dtype == np.float64 and X.flags.c_contiguous:
            out = self.direct(X)
        else:
            out = self.booster.inplace_predict(X, iteration_range=self.range,
                                               predict_type="value", missing=self.missing,
                                               validate_features=False)
        return self._wrap(out)

    def _wrap(self, out: np.ndarray) -> np.ndarray:
        if self.regression or (out.ndim == 2 and out.shape[1] == self.n_classes):
            return out
        return np.vstack((1.0 - out, out)).transpose()

    # The fused walk (several members' trees in one call, see predictor.py).
    @property
    def tree_walker(self) -> Any:
        return None if self.walker is None else self.walker.walker

    def walkable(self, X: np.ndarray) -> bool:
        return True

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        assert self.walker is not None
        return self._wrap(self.walker.finish(raw if self.walker.link == "softmax"
                                             else raw[:, 0]))


def _checked_xgboost(booster: Any, iteration_range: tuple[int, int], missing: float) -> Any:
    """The booster's compiled walk, if it gives the booster's margins and values bit for
    bit on probe rows."""
    from mlwright.search.treewalk_boosters import xgboost_walker

    if not (isinstance(missing, float) and np.isnan(missing)):
        return None
    try:
        walker = xgboost_walker(booster, iteration_range)
    except Exception as exc:  # an unexpected model JSON: keep the booster
        log.debug("no compiled walk for this XGBoost booster (%s)", exc)
        return None
    if walker is None:
        return None
    probe = _probe_rows(walker.walker, walker.walker.n_features)
    probe = probe[np.isfinite(probe).all(axis=1) | np.isnan(probe).any(axis=1)]
    def native(kind: str) -> np.ndarray:
        return booster.inplace_predict(probe, iteration_range=iteration_range,
                                       predict_type=kind, missing=missing,
                                       validate_features=False)
    if not (np.array_equal(walker.margin(probe), native("margin"), equal_nan=True)
            and np.array_equal(walker(probe), native("value"), equal_nan=True)):
        log.warning("the compiled walk of an XGBoost booster differs from its predict on "
                    "probe rows; the booster predicts")
        return None
    return walker


def _checked_catboost(est: Any, regression: bool) -> tuple[Any, str]:
    """The model's compiled walk, if it gives the model's values on probe rows, else None
    and why not."""
    from mlwright.search.treewalk_boosters import catboost_walker

    try:
        walker = catboost_walker(est.model_, est._frame)
    except NotImplementedError as exc:
        return None, f"not walked: {exc}"
    except Exception as exc:  # an unexpected model JSON: keep the model
        log.debug("no compiled walk for this CatBoost model (%s)", exc)
        return None, "not walked: model not read"
    if walker is None:
        return None, "no numba"
    probe = _probe_rows(walker.walker, walker.walker.n_features)
    cats = probe[:, :walker.n_cat]
    rng = np.random.default_rng(1)
    # Codes the prep gives (-1 .. a few dozen) and NaN; the others are not walked.
    cats[~np.isnan(cats)] = np.trunc(np.clip(cats[~np.isnan(cats)], -1, 1023))
    some = rng.random(cats.shape) < 0.3
    cats[some] = rng.integers(-1, 40, int(some.sum()))
    frame = est._frame(probe)
    model = est.model_
    expected = (np.asarray(model.predict(frame, thread_count=1)).ravel() if regression
                else model.predict_proba(frame, thread_count=1))
    ours = walker(probe)
    # CatBoost sums its leaves in double in its own order: equal within a few ulps.
    if not (walker.covers(probe) and ours.shape == expected.shape
            and np.allclose(ours, expected, rtol=1e-12, atol=1e-13, equal_nan=True)):
        log.warning("the compiled walk of a CatBoost model differs from its predict on "
                    "probe rows; the model predicts")
        return None, "walk differed on probe rows"
    return walker, ""


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
    """CatBoostModel.predict / predict_proba: by the compiled tree walk where it gives the
    model's values on probe rows and the matrix's category codes are ones it has read,
    else by the model with one thread instead of a pool per call."""

    def __init__(self, est: Any, regression: bool) -> None:
        from mlwright.search.families.boosting import CatBoostModel

        if type(est) is not CatBoostModel:
            raise TypeError(type(est).__name__)
        self.est = est
        self.regression = regression
        self.walker, why = _checked_catboost(est, regression)
        self.path = f"catboost-1-thread ({why})" if self.walker is None \
            else "catboost-treewalk"

    def __call__(self, X: Any) -> np.ndarray:
        walker = self.walker
        # The walk at every size: CatBoost's own call turns the matrix into Python objects
        # first (1,761 telco rows, 2 trees: 3.5 ms against 0.2 for the walk).
        if walker is not None and isinstance(X, np.ndarray) and walker.covers(X):
            return walker(X)
        frame = self.est._frame(X)
        threads = -1 if X.shape[0] >= THREADED_ROWS else 1
        if self.regression:
            return np.asarray(self.est.model_.predict(frame, thread_count=threads)).ravel()
        return self.est.model_.predict_proba(frame, thread_count=threads)

    @property
    def tree_walker(self) -> Any:
        return None if self.walker is None else self.walker.walker

    def walkable(self, X: np.ndarray) -> bool:
        assert self.walker is not None
        return bool(self.walker.covers(X))

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        assert self.walker is not None
        return np.asarray(self.walker.from_raw(raw))


class _LightGBM:
    """``Booster.predict``: by the compiled tree walk (:mod:`mlwright.search.treewalk`)
    where it reproduces the booster on probe rows, else by the booster."""

    # Every LightGBM walk takes the same rows (LightGBMWalker.walkable): a fused walk of
    # several checks a matrix once.
    walk_rule = "lightgbm"

    def __init__(self, est: Any, regression: bool) -> None:
        from mlwright.search.ensemble import _lightgbm_booster

        self.booster = _lightgbm_booster(est)
        if self.booster is None:
            raise TypeError(type(est).__name__)
        self.regression = regression
        self.walker = _checked_walker(self.booster)
        self.path = "lightgbm-booster" if self.walker is None else "lightgbm-treewalk"

    def __call__(self, X: Any) -> np.ndarray:
        # The walk for a few rows, for models of _LIGHTGBM_WALKS_FROM trees and from
        # THREADED_ROWS on: between, LightGBM's single-thread loop was as fast or faster
        # on telco's small champion (1,761 rows: 5.4 ms against 5.9 for 63 trees).
        trees = 0 if self.walker is None else self.walker.walker.n_trees
        if self.walker is not None and isinstance(X, np.ndarray) and (
                X.shape[0] >= THREADED_ROWS or trees >= _LIGHTGBM_WALKS_FROM
                or X.shape[0] * trees <= WALK_VISITS):
            raw = self.walker(X)
        else:
            threads = 0 if X.shape[0] >= THREADED_ROWS else 1  # 0: LightGBM's default, all
            raw = np.asarray(self.booster.predict(X, num_threads=threads), dtype=float)
        return self._wrap(raw)

    def _wrap(self, raw: np.ndarray) -> np.ndarray:
        if self.regression or raw.ndim == 2:
            return raw
        return np.column_stack([1.0 - raw, raw])

    @property
    def tree_walker(self) -> Any:
        return None if self.walker is None else self.walker.walker

    def walkable(self, X: np.ndarray) -> bool:
        assert self.walker is not None
        return self.walker.walkable(X)

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        assert self.walker is not None
        return self._wrap(self.walker.from_raw(raw if self.walker.link == "softmax"
                                               else raw[:, 0]))


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


def native_predictor(est: Any, regression: bool) -> tuple[Any, str]:
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
    if type(est).__name__.startswith("HistGradientBoosting"):
        from mlwright.search.treewalk_hist import HistGBMember

        attempts.append(("hist_gb-treewalk", lambda: HistGBMember(est, regression,
                                                                   _probe_rows)))
    if module.startswith("sklearn.neighbors"):
        from mlwright.search.members_sklearn import DistanceNeighbors

        attempts.append(("knn-argkmin", lambda: DistanceNeighbors(est, regression)))
    if module.startswith("sklearn.neural_network"):
        from mlwright.search.members_sklearn import Perceptron

        attempts.append(("mlp-forward", lambda: Perceptron(est, regression)))
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
