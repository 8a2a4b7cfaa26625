"""scikit-learn's HistGradientBoosting walked by :mod:`mlwright.search.treewalk`'s compiled
loop, and the ensemble member that takes it.

``HistGradientBoosting*.predict_proba`` calls one Cython predictor per tree, each a
Python call with its own thread team: a one-row prediction of a 350-tree model spends
2.5 ms in those calls. Here its trees become the walk's node arrays and one compiled call
sums them.

Exactness: the comparisons are the predictor's (``_predict_one_from_raw_data``: NaN by
``missing_go_to_left``, else ``x <= num_threshold``, on the same float64 values), the
leaf values are the nodes' own, added in tree order to the baseline as ``_raw_predict``
adds them, and the link is the estimator's own loss (``_loss.predict_proba`` /
``_loss.link.inverse``): the raw scores are the estimator's bit for bit. Categorical
splits (raw bitsets, unknown categories as missing) are not read: such a model keeps its
own predict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlwright.search.treewalk import TreeWalker, WholeWalk, _Builder, _compiled_kernel

__all__ = ["HistGBMember", "HistGBWalker", "hist_gb_walker"]

# The walk's decision type of a numeric node with NaN as the missing type (bits 2-3) and,
# when set, its default direction left (bit 1).
_NAN_MISSING = 2 << 2
_DEFAULT_LEFT = 2


class HistGBWalker(WholeWalk):
    """``predict_proba`` (classifier) or ``predict`` (regressor) of a fitted
    HistGradientBoosting model by a TreeWalker."""

    def __init__(self, walker: TreeWalker, est: Any, regression: bool) -> None:
        self.walker = walker
        self.loss = est._loss
        self.regression = regression

    def raw(self, X: np.ndarray) -> np.ndarray:
        """``_raw_predict(X)``: (rows, trees per iteration) float64."""
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.walker.n_features:
            raise ValueError(f"expected {self.walker.n_features} features, got {X.shape}")
        return self.walker.raw(np.ascontiguousarray(X))

    def __call__(self, X: Any) -> np.ndarray:
        return self.from_raw(self.raw(X))

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        """The estimator's link of raw scores (its own loss object, as it calls it on its
        Fortran-ordered raw predictions)."""
        raw = np.asfortranarray(raw)
        if self.regression:
            return np.asarray(self.loss.link.inverse(raw.ravel()))
        return np.asarray(self.loss.predict_proba(raw))


def hist_gb_walker(est: Any, regression: bool) -> HistGBWalker | None:
    """A :class:`HistGBWalker` of a fitted HistGradientBoostingClassifier / Regressor, or
    None where numba is missing or the model has categorical splits."""
    try:
        _compiled_kernel()
    except ImportError:
        return None
    is_categorical = getattr(est, "is_categorical_", None)
    if is_categorical is not None and np.any(is_categorical):
        return None
    width = int(est.n_trees_per_iteration_)
    builder = _Builder(width=1)
    for iteration in est._predictors:
        if len(iteration) != width:
            return None
        for col, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"][nodes["is_leaf"] == 0]):
                return None
            leaf = nodes["is_leaf"] != 0
            internal = ~leaf
            if not internal.any():  # a single leaf
                none = np.empty(0, np.int64)
                builder.add(col, nodes["value"][:1].astype(np.float64), none,
                            none.astype(np.float64), none, none, none,
                            cover=nodes["count"][:1])
                continue
            # Renumbered as the walk reads trees: internal nodes 0.., leaves ~0, ~1, ...
            ids = np.where(internal, np.cumsum(internal) - 1, ~(np.cumsum(leaf) - 1))
            kids = internal.nonzero()[0]
            go_left = nodes["missing_go_to_left"][kids] != 0
            builder.add(col, nodes["value"][leaf].astype(np.float64),
                        nodes["feature_idx"][kids].astype(np.int64),
                        nodes["num_threshold"][kids].astype(np.float64),
                        _NAN_MISSING | np.where(go_left, _DEFAULT_LEFT, 0),
                        ids[nodes["left"][kids].astype(np.int64)],
                        ids[nodes["right"][kids].astype(np.int64)],
                        cover=np.concatenate([nodes["count"][kids], nodes["count"][leaf]]))
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    if len(baseline) != width:
        return None
    walker = builder.build(width, int(est.n_features_in_), init=baseline)
    return HistGBWalker(walker, est, regression)


class HistGBMember:
    """The ensemble member's predictor: the walk, built only where it gives the
    estimator's raw scores bit for bit (and its predictions within a few ulps) on
    ``probe(walker, n_features)``'s rows: a TypeError otherwise, and the caller keeps the
    estimator's own predict."""

    def __init__(self, est: Any, regression: bool, probe: Callable[[TreeWalker, int],
                                                                    np.ndarray]) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        expected = HistGradientBoostingRegressor if regression else \
            HistGradientBoostingClassifier
        if type(est) is not expected:
            raise TypeError(type(est).__name__)
        walker = hist_gb_walker(est, regression)
        if walker is None:
            raise TypeError("a form the walk does not read (categorical splits, or no numba)")
        rows = probe(walker.walker, walker.walker.n_features)
        expected = est.predict(rows) if regression else est.predict_proba(rows)
        if not (np.array_equal(walker.raw(rows), est._raw_predict(rows), equal_nan=True)
                and np.allclose(walker(rows), expected, rtol=1e-14, atol=1e-15,
                                equal_nan=True)):
            raise TypeError("the walk differs from the estimator on probe rows")
        self.walker = walker
        self.path = "hist_gb-treewalk"

    def __call__(self, X: Any) -> np.ndarray:
        return self.walker(X)

    @property
    def tree_walker(self) -> TreeWalker:
        return self.walker.walker

    def walkable(self, X: np.ndarray) -> bool:
        return True

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        return self.walker.from_raw(raw)
