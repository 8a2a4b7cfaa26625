"""Per-member contributions of the original columns, in the member's raw (margin) space.

Each ensemble member is explained with the exact method its kind allows:

* LightGBM, XGBoost, CatBoost: their own exact TreeSHAP (``pred_contrib`` /
  ``pred_contribs`` / ``ShapValues``), in the margin space (log-odds, softmax logits, or the
  regression value on the member's own target scale);
* scikit-learn forests and HistGradientBoosting: exact path-dependent TreeSHAP over their
  compiled walk (:mod:`~mlwright.evaluate.explain.treeshap`, ``shap.TreeExplainer``'s
  values without importing shap), raw output = class fractions for forests, margins for
  HGB; ``shap.TreeExplainer`` where there is no walk (GradientBoosting, categorical
  HistGradientBoosting splits);
* linear models: ``coef * (x - mean of the training design)``, exact;
* anything else (kNN, MLP): Shapley values estimated over random permutations of the
  *original columns* (antithetic pairs), against a small background sample of the
  training design. Each permutation telescopes from the background's mean output to the
  row's output, so the estimate is additive exactly, whatever the number of permutations.
  shap's PermutationExplainer would permute one-hot fragments one by one and build rows
  with two categories "on" at once; grouping by original column avoids that.

Every function returns ``(phi, base)``: ``phi`` of shape (n_rows, n_channels, n_columns),
already summed back to the model's original columns through ``TablePrep.feature_origin_``,
and ``base`` of shape (n_channels,), with ``base + phi.sum(-1)`` equal to the member's raw
output. :func:`link` maps that raw output to the ensemble's output space.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlwright._logging import get_logger
from mlwright.data.kinds import Task

__all__ = ["MemberContributions", "aggregation_matrix", "link", "member_contributions",
           "member_kind"]

log = get_logger(__name__)

# A tree walk (or shap.TreeExplainer) converts every tree on construction (hundreds of ms
# for a forest): build it once per fitted estimator.
_TREE_EXPLAINERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@dataclass
class MemberContributions:
    """One member's explanation in its raw space (see the module docstring)."""

    phi: np.ndarray          # (n, k, C): per original column
    base: np.ndarray         # (k,)
    kind: str                # lightgbm | xgboost | catboost | sklearn_tree | linear | agnostic

    @property
    def raw(self) -> np.ndarray:
        return self.base[None, :] + self.phi.sum(axis=2)


def member_kind(estimator: Any) -> str:
    module = type(estimator).__module__
    name = type(estimator).__name__
    if module.startswith("lightgbm"):
        return "lightgbm"
    if module.startswith("xgboost"):
        return "xgboost"
    if name == "CatBoostModel" or module.startswith("catboost"):
        return "catboost"
    if module.startswith("sklearn.ensemble") and name in (
            "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
            "ExtraTreesRegressor", "HistGradientBoostingClassifier",
            "HistGradientBoostingRegressor", "GradientBoostingClassifier",
            "GradientBoostingRegressor"):
        return "sklearn_tree"
    if module.startswith("sklearn.linear_model") and hasattr(estimator, "coef_"):
        return "linear"
    return "agnostic"


def aggregation_matrix(origin: np.ndarray, columns: list[str]) -> sp.csr_matrix:
    """(n_features_out, n_columns) 0/1 matrix: output feature -> its original column."""
    index = {c: j for j, c in enumerate(columns)}
    rows, cols = [], []
    for i, c in enumerate(origin):
        j = index.get(str(c))
        if j is not None:
            rows.append(i)
            cols.append(j)
    data = np.ones(len(rows))
    return sp.csr_matrix((data, (rows, cols)), shape=(len(origin), len(columns)))


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)


def _group(phi: np.ndarray, agg: sp.csr_matrix) -> np.ndarray:
    """(n, k, F) -> (n, k, C)."""
    n, k, f = phi.shape
    return np.asarray((agg.T @ phi.reshape(n * k, f).T).T).reshape(n, k, -1)


def _split_bias(out: np.ndarray, n: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Native TreeSHAP output (n, [k,] F+1), the bias last -> (phi (n,k,F), base (k,))."""
    out = np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)
    out = out.reshape(n, -1, n_features + 1)
    # The bias column is the same for every row (the trees' cover-weighted mean output).
    return out[:, :, :n_features], out[0, :, n_features].copy()


def _lightgbm(est: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
    booster = getattr(est, "booster_", est)
    X = _dense(Xt)
    # The booster's default iteration is the best one, as in Ensemble's fast path.
    out = booster.predict(X, pred_contrib=True, num_threads=1)
    return _split_bias(out, X.shape[0], X.shape[1])


def _xgboost(est: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
    import xgboost as xgb

    booster = est.get_booster() if hasattr(est, "get_booster") else est
    X = _dense(Xt)
    best = getattr(est, "best_iteration", None) if hasattr(est, "get_booster") else None
    # The scikit-learn wrapper predicts with the best iteration when early stopping set one.
    iteration_range = (0, int(best) + 1) if best is not None else (0, 0)
    missing = getattr(est, "missing", np.nan)
    dm = xgb.DMatrix(X, missing=missing, nthread=1)
    out = booster.predict(dm, pred_contribs=True, iteration_range=iteration_range)
    return _split_bias(out, X.shape[0], X.shape[1])


def _catboost(est: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
    from catboost import Pool

    model = getattr(est, "model_", est)
    n_ordinal = int(getattr(est, "n_ordinal", 0))
    data = est._frame(Xt) if hasattr(est, "_frame") else _dense(Xt)
    pool = Pool(data, cat_features=list(range(n_ordinal)) or None)
    out = model.get_feature_importance(data=pool, type="ShapValues", thread_count=1)
    return _split_bias(out, data.shape[0], data.shape[1])


def _sklearn_tree(est: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
    from mlwright.evaluate.explain.treeshap import tree_shap, tree_walker_for

    explainer = _TREE_EXPLAINERS.get(est)
    if explainer is None:
        explainer = tree_walker_for(est)
        if explainer is None:
            import shap

            explainer = shap.TreeExplainer(est)
        _TREE_EXPLAINERS[est] = explainer
    X = _dense(Xt)
    if isinstance(explainer, tuple):
        walker, divisor = explainer
        return tree_shap(walker, X, divisor)
    values = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=np.float64)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64)).ravel()
    # shap gives (n, F) for one output, (n, F, k) for several.
    values = values[:, None, :] if values.ndim == 2 else np.transpose(values, (0, 2, 1))
    return values, base


def _linear(est: Any, Xt: Any, mean: np.ndarray | None,
            agg: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))          # (k, F)
    intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
    if intercept.size == 1 and coef.shape[0] > 1:
        intercept = np.repeat(intercept, coef.shape[0])
    m = np.zeros(coef.shape[1]) if mean is None else mean
    n = Xt.shape[0]
    phi = np.empty((n, coef.shape[0], agg.shape[1]))
    for k in range(coef.shape[0]):
        weighted = agg.multiply(coef[k][:, None]).tocsr()                    # (F, C)
        # Sparse-friendly: X @ (coef-weighted grouping) minus the same for the mean row.
        part = Xt @ weighted
        part = part.toarray() if sp.issparse(part) else np.asarray(part)
        phi[:, k, :] = part.reshape(n, -1) - np.asarray(weighted.T @ m).ravel()[None, :]
    base = intercept + coef @ m
    return phi, base


def _agnostic(predict: Any, Xt: Any, background: np.ndarray, agg: sp.csr_matrix,
              n_permutations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Permutation Shapley values over original-column groups (see the module docstring).

    ``predict`` maps a design matrix to the member's outputs (n, k) in output space.
    """
    X = _dense(Xt)
    bg = _dense(background)
    n_out = np.asarray(predict(bg[:1])).reshape(1, -1).shape[1]
    n_cols = agg.shape[1]
    col_of = np.asarray(agg.argmax(axis=1)).ravel()
    used = np.flatnonzero(np.asarray(agg.sum(axis=0)).ravel() > 0)
    members = {int(g): np.flatnonzero(col_of == g) for g in used}
    # Features of no original column (none today) stay at the row's value throughout.
    orphan = np.asarray(agg.sum(axis=1)).ravel() == 0
    base = np.asarray(predict(bg), dtype=np.float64).reshape(len(bg), -1).mean(axis=0)
    rng = np.random.default_rng(seed)
    half = max(1, n_permutations // 2)
    orders = [rng.permutation(used) for _ in range(half)]
    orders += [o[::-1] for o in orders]  # antithetic pairs lower the variance
    G, F, B = len(used), X.shape[1], len(bg)
    masks = np.zeros((len(orders), G + 1, F), dtype=bool)
    masks[:, :, orphan] = True
    for p, order in enumerate(orders):
        for t, g in enumerate(order, start=1):
            masks[p, t:, members[int(g)]] = True
    phi = np.zeros((len(X), n_out, n_cols))
    for i, x in enumerate(X):
        rows = np.where(masks.reshape(-1, 1, F), x[None, None, :], bg[None, :, :])
        out = np.asarray(predict(rows.reshape(-1, F)), dtype=np.float64)
        out = out.reshape(len(orders), G + 1, B, n_out).mean(axis=2)      # (P, G+1, k)
        # Shift the start to the background mean exactly (orphans start at the row's value).
        out[:, 0, :] = base
        steps = np.diff(out, axis=1)                                        # (P, G, k)
        for p, order in enumerate(orders):
            phi[i][:, order] += steps[p].T
        phi[i] /= len(orders)
    return phi, base


def member_contributions(member: dict[str, Any], Xt: Any, agg: sp.csr_matrix, *,
                         mean: np.ndarray | None = None, background: np.ndarray | None = None,
                         output_fn: Any = None, n_permutations: int = 10,
                         seed: int = 0) -> MemberContributions:
    """Contributions of one ensemble member on its prepared rows ``Xt``.

    ``mean`` is the training design's mean (linear members), ``background`` a sample of the
    training design and ``output_fn`` the member's design -> output function (the
    model-agnostic fallback).
    """
    est = member["estimator"]
    kind = member_kind(est)
    if kind == "lightgbm":
        phi, base = _lightgbm(est, Xt)
    elif kind == "xgboost":
        phi, base = _xgboost(est, Xt)
    elif kind == "catboost":
        phi, base = _catboost(est, Xt)
    elif kind == "sklearn_tree":
        phi, base = _sklearn_tree(est, Xt)
    elif kind == "linear":
        return MemberContributions(*_linear(est, Xt, mean, agg), kind=kind)
    else:
        if background is None:
            fit_x = getattr(est, "_fit_X", None)  # kNN keeps its training design
            if fit_x is not None:
                pick = np.random.default_rng(seed).choice(len(fit_x), min(50, len(fit_x)),
                                                          replace=False)
                background = np.asarray(fit_x)[np.sort(pick)]
            else:
                log.warning("no background sample for the %s member: explaining against "
                            "the design's centre (zeros); attach_reference() fixes that",
                            member.get("family"))
                background = np.zeros((1, Xt.shape[1]))
        return MemberContributions(*_agnostic(output_fn, Xt, background, agg,
                                              n_permutations, seed), kind=kind)
    return MemberContributions(_group(phi, agg), base, kind)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def link(kind: str, raw: np.ndarray, task: Task, member: dict[str, Any],
         n_classes: int) -> np.ndarray:
    """Raw output (n, k) -> the ensemble's output space: probabilities (n, n_classes) over
    all classes (as ``full_proba``), or regression values (n, 1) on the target's scale."""
    if kind == "agnostic":
        return raw  # explained in output space already
    if task == "regression":
        out = raw[:, :1]
        if member.get("target_transform") == "log":
            out = np.expm1(out)
        if "clip" in member:
            out = np.clip(out, *member["clip"])
        return out
    if kind == "sklearn_tree" and not type(member["estimator"]).__name__.startswith("Hist") \
            and not type(member["estimator"]).__name__.startswith("GradientBoosting"):
        proba = raw  # forests average class fractions: the raw output is the probability
    elif raw.shape[1] == 1:
        p = _sigmoid(raw[:, 0])
        proba = np.column_stack([1.0 - p, p])
    else:
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        proba = e / e.sum(axis=1, keepdims=True)
    seen = np.asarray(getattr(member["estimator"], "classes_", np.arange(proba.shape[1])))
    try:
        seen = seen.astype(int)
    except (TypeError, ValueError):
        seen = np.arange(proba.shape[1])
    if proba.shape[1] == n_classes and np.array_equal(seen, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, seen] = proba
    return full
