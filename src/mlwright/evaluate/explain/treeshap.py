"""Exact TreeSHAP of scikit-learn's forests and HistGradientBoosting, on their compiled walk.

The members are already flattened into node arrays for prediction
(:func:`~mlwright.search.treewalk.forest_walker`,
:func:`~mlwright.search.treewalk_hist.hist_gb_walker`, with each node's training cover);
path-dependent TreeSHAP runs over the same arrays, with the same comparisons as the walk
(``_treeshap_kernel``, numba). The values are ``shap.TreeExplainer``'s (path-dependent, no
background) without importing shap and its plotting stack, about a second of a short
``--budget``'s report. ``base + phi.sum(-1)`` is the member's raw output: class fractions
for forests, margins for HistGradientBoosting.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mlwright.search.treewalk import TreeWalker, _cores

__all__ = ["tree_shap", "tree_walker_for"]

# Rows per thread below which one thread does it all (a row's TreeSHAP walks every node).
_THREAD_ROWS = 8


def tree_walker_for(est: Any) -> tuple[TreeWalker, float] | None:
    """The walk of a scikit-learn forest or HistGradientBoosting model with node covers, and
    the divisor of its raw sum (the number of trees of a forest); None where it has no such
    walk (categorical HistGradientBoosting splits, numba missing, another model)."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    from mlwright.search.treewalk import forest_walker
    from mlwright.search.treewalk_hist import hist_gb_walker

    kind = type(est)
    if kind in (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier,
                ExtraTreesRegressor):
        if getattr(est, "n_outputs_", 1) != 1:
            return None
        forest = forest_walker(est)
        return None if forest is None else (forest.walker, float(forest.n_trees))
    if kind in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        hist = hist_gb_walker(est, kind is HistGradientBoostingRegressor)
        return None if hist is None else (hist.walker, 1.0)
    return None


def tree_shap(walker: TreeWalker, X: np.ndarray, divisor: float = 1.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """(phi of shape (rows, outputs, features), base of shape (outputs,)) of the walk's raw
    output divided by ``divisor``, for the float64 rows ``X``."""
    from mlwright.evaluate.explain import _treeshap_kernel as kernel

    if walker.cover is None:
        raise ValueError("this tree walk was built without node covers")
    (roots, tree_col, _, feature, threshold, dtype, left, right, cat_start, cat_len, bits,
     value) = walker.arrays
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != walker.n_features:
        raise ValueError(f"expected rows of {walker.n_features} features, got an array of "
                         f"shape {X.shape}")
    n = X.shape[0]
    phi = np.zeros((n, walker.n_out, walker.n_features))
    base = np.zeros(walker.n_out)
    kernel.expected(roots, tree_col, left, right, value, walker.cover, base)
    if walker.init is not None:
        base += walker.init
    depth = int(kernel.depths(roots, left, right))
    args = (roots, tree_col, feature, threshold, dtype, left, right, cat_start, cat_len, bits,
            value, walker.cover, depth, phi)
    cores = _cores()
    if n < _THREAD_ROWS * cores or cores == 1:
        kernel.shap_rows(X, 0, n, *args)
    else:  # the loop releases the GIL: one slice of the rows per core
        step = -(-n // cores)
        with ThreadPoolExecutor(cores, thread_name_prefix="mlwright-treeshap") as pool:
            for job in [pool.submit(kernel.shap_rows, X, lo, min(lo + step, n), *args)
                        for lo in range(0, n, step)]:
                job.result()
    return phi / divisor, base / divisor
