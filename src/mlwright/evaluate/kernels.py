"""Compile mlwright's numba kernels into numba's on-disk cache (``python -m
mlwright.cli.compile_kernels`` runs it; the Makefile does once installed).

The tree walk (:mod:`mlwright.search._treekernel`) and TreeSHAP
(:mod:`mlwright.evaluate.explain._treeshap_kernel`) are compiled on their first call in a
process unless numba's cache holds them: 0.9 s and 3.3 s of one core, paid by the first
training after an install, which at ``--budget 5`` is most of its report (telco_churn's
first run 12.3 s, the next 7.7 s). Compiling here, when the package is installed, moves
that cost out of every command, as pip compiles bytecode at install. The kernels are
called through the walkers the predictor and the explanations build, on small models of a
real table (scikit-learn's breast cancer data), so the cached signatures are theirs.
"""

from __future__ import annotations

import time

__all__ = ["compile_kernels"]


def compile_kernels() -> dict[str, float]:
    """Call every compiled kernel once; the seconds each group took (compiling, or loading
    from the cache when it is warm already)."""
    import lightgbm as lgb
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from xgboost import XGBClassifier

    from mlwright.evaluate.explain.treeshap import tree_shap, tree_walker_for
    from mlwright.search.treewalk import lightgbm_walker
    from mlwright.search.treewalk_boosters import xgboost_walker

    X, y = load_breast_cancer(return_X_y=True)
    X = np.ascontiguousarray(X, dtype=np.float64)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1},
                        lgb.Dataset(X, y), num_boost_round=5)
    xgb = XGBClassifier(n_estimators=5, max_depth=3).fit(X, y)
    hist = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    seconds["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    boosters = [lightgbm_walker(booster),
                xgboost_walker(xgb.get_booster(), (0, xgb.get_booster().num_boosted_rounds()))]
    for member in boosters:
        if member is not None:
            member(X[:8])
    seconds["walk"] = time.perf_counter() - start
    start = time.perf_counter()
    for est in (forest, hist):
        found = tree_walker_for(est)
        if found is not None:
            walk, divisor = found
            walk.raw(X[:8])
            tree_shap(walk, X[:8], divisor)
    seconds["treeshap"] = time.perf_counter() - start
    return seconds
