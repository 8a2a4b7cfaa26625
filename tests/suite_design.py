"""A public table's design matrix through one preprocessing style, for the tests of member
predictors (tree walks, k-NN, MLP) against the estimators' own output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlwright.data.contract import learn_contract
from mlwright.data.kinds import ColumnKind
from mlwright.datasets import SUITE, load_suite
from mlwright.prep import build_preprocessor, plan_columns


@dataclass
class Design:
    """Training matrix, its target (float for regression, class codes otherwise), held-out
    matrix, task, and the categorical (ordinal-coded) columns of the tree style."""

    Xt: np.ndarray
    y: np.ndarray
    Xh: np.ndarray
    task: str
    categorical: list[int]


def suite_design(name: str, style: str, *, rows: int, seed: int, nan_share: float = 0.0
                 ) -> Design:
    """``rows`` seeded rows of the suite table ``name``, the first three quarters fitting
    ``style``'s preprocessing (tree, linear...), the rest held out; ``nan_share`` of the
    cells of both matrices set to NaN (seeded)."""
    spec = SUITE[name]
    df = load_suite(name, nrows=rows, seed=seed)
    task = "regression" if spec.task == "forecasting" else spec.task
    contract = learn_contract(df, target=spec.target, task=task)
    X = df.drop(columns=spec.target)
    plan = plan_columns({c: ColumnKind(contract.kinds[c]) for c in X.columns})
    raw = df[spec.target].to_numpy()
    y = raw.astype(float) if task == "regression" else np.searchsorted(np.unique(raw), raw)
    prep = build_preprocessor(plan, style, task=task)
    cut = rows * 3 // 4
    Xt = np.asarray(prep.fit_transform(X.iloc[:cut], y[:cut]), dtype=np.float64)
    Xh = np.asarray(prep.transform(X.iloc[cut:]), dtype=np.float64)
    if nan_share:
        rng = np.random.default_rng(0)
        for M in (Xt, Xh):
            M[rng.random(M.shape) < nan_share] = np.nan
    return Design(Xt, y[:cut], Xh, task, list(range(plan.n_ordinal)))
