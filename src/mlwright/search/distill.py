"""``--distill``: one LightGBM student that learns the ensemble's outputs.

The student is an ordinary one-member :class:`~mlwright.search.ensemble.Ensemble` (the
``tree`` preprocessing and one LightGBM), so it is saved, compiled, served and exported like
any model. It learns the teacher's soft labels: probabilities (classification) or predicted
values (regression) on the training rows and on synthetic rows the teacher labels too.

* **Augmentation** (AutoGluon's "spunge", after Bucila et al.'s model compression): each
  synthetic row copies a random training row and replaces each column, with probability
  ``SWAP_SHARE`` (at least one column per row), by the value of another random training row
  in that column. Any column kind works (categories, dates, text), and it is seeded.
* **Soft labels with a plain LightGBM**: a classification row with teacher probabilities
  ``q`` becomes K weighted copies, one per class with weight ``q_k``; the weighted log loss
  of these copies is exactly the cross-entropy against ``q``, so the student is an ordinary
  ``LGBMClassifier`` (no custom objective, nothing special to compile or export).
* **An honest CV**: on fold j the student learns from fold j's *teacher* (the members'
  fold-j models, :func:`~mlwright.search.refit.fold_ensemble`) on fold j's training rows
  and synthetic rows drawn from them, and is scored against the true labels of fold j's
  validation rows, which nothing it learned from has seen. (The teacher's out-of-fold
  predictions as labels would leak: a training row's out-of-fold prediction comes from
  models that were fitted on fold j's validation rows.) The folds, and so the student's CV
  interval, are the teacher's.
* **The final student** mirrors the teacher's final model: with k-fold CV it learns from
  the refit teacher on all rows; with a holdout the teacher is the holdout model and the
  student shipped is the holdout student, the one evaluated.

Its hyperparameters are the best LightGBM trial's (the family's first default when none
ran), with at least ``MIN_LEARNING_RATE`` and early stopping on ``VALID_SHARE`` of its own
(soft-labelled) rows, also at a plateau (``PLATEAU_ROUNDS``).
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlwright._logging import get_logger
from mlwright.data.kinds import Task
from mlwright.search._base import FitContext
from mlwright.search.ensemble import Ensemble
from mlwright.search.records import TrialRecord
from mlwright.search.refit import _single_threaded, fold_ensemble
from mlwright.search.session import _Search

__all__ = ["AUGMENT_FACTOR", "MAX_AUGMENT", "Student", "augment", "distill"]

log = get_logger(__name__)

#: Synthetic rows per training row, and at most this many in all.
AUGMENT_FACTOR = 2.0
MAX_AUGMENT = 20_000
#: Expected share of a synthetic row's columns taken from another row.
SWAP_SHARE = 0.15
#: Share of the student's rows that early stopping watches.
VALID_SHARE = 0.1
MIN_LEARNING_RATE = 0.1
MAX_ROUNDS = 1000
#: Rounds stop once the last PLATEAU_ROUNDS improved the watched loss by less than
#: PLATEAU_GAIN of its first round's value: a student can fit its teacher ever closer for
#: hundreds of rounds (its loss against soft labels has no noise floor), which buys
#: nothing on true labels and costs latency (every round is a tree to walk).
PLATEAU_ROUNDS = 50
PLATEAU_GAIN = 0.002
#: Weighted copies lighter than this carry nothing a model could learn; left out.
MIN_WEIGHT = 1e-6
STYLE = "tree"


@dataclass
class Student:
    """The distilled model and its CV on the teacher's folds, against the true labels."""

    model: Ensemble
    oof: np.ndarray
    fold_losses: list[float]
    cv_loss: float
    seconds: float
    params: dict[str, Any]
    n_augmented: int
    notes: list[str] = field(default_factory=list)


def augment(X: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` synthetic rows from ``X`` by per-column resampling (see the module docstring)."""
    m, width = len(X), X.shape[1]
    base = rng.integers(0, m, n)
    swap = rng.random((n, width)) < SWAP_SHARE
    unchanged = np.flatnonzero(~swap.any(axis=1))
    swap[unchanged, rng.integers(0, width, len(unchanged))] = True
    donors = rng.integers(0, m, (n, width))
    columns = {}
    for c, name in enumerate(X.columns):
        rows = np.where(swap[:, c], donors[:, c], base)
        columns[name] = X[name].iloc[rows].reset_index(drop=True)
    return pd.DataFrame(columns)


def _n_augment(rows: int) -> int:
    return int(min(MAX_AUGMENT, AUGMENT_FACTOR * rows))


def student_params(s: _Search) -> dict[str, Any]:
    """The best complete LightGBM trial's parameters, else the family's first default."""
    from mlwright.search.families.boosting import LightGBMFamily

    done = [r for r in s.records if r.family == "lightgbm" and r.status == "complete"]
    if done:
        params = dict(min(done, key=lambda r: r.loss).params)
    else:
        first = LightGBMFamily().default_configs(s.ctx(STYLE))[0]
        params = {k.split("__", 1)[1]: v for k, v in first.items()}
    params.pop("n_estimators", None)
    params["learning_rate"] = max(float(params.get("learning_rate", 0.1)), MIN_LEARNING_RATE)
    return params


def _student_rows(Xt: Any, target: np.ndarray, task: Task, seed: int
                  ) -> tuple[Any, np.ndarray, np.ndarray | None, np.ndarray]:
    """(design, labels, weights, watched by early stopping) of the student's rows."""
    n = Xt.shape[0]
    watch = np.zeros(n, dtype=bool)
    rng = np.random.default_rng(seed)
    watch[rng.choice(n, max(1, int(VALID_SHARE * n)), replace=False)] = True
    if task is Task.REGRESSION:
        return Xt, target, None, watch
    k = target.shape[1]
    X = sp.vstack([Xt] * k, format="csr") if sp.issparse(Xt) else np.concatenate([Xt] * k)
    labels = np.repeat(np.arange(k), n)
    weights = target.T.ravel()
    keep = weights > MIN_WEIGHT
    return X[keep], labels[keep], weights[keep], np.tile(watch, k)[keep]


def _plateau(lgb: Any) -> Any:
    """A LightGBM callback: stop at a plateau (see PLATEAU_ROUNDS), keeping the best."""
    history: list[float] = []

    def callback(env: Any) -> None:
        _, _, value, higher_better = env.evaluation_result_list[0]
        history.append(-value if higher_better else value)
        if len(history) > PLATEAU_ROUNDS:
            before, now = min(history[:-PLATEAU_ROUNDS]), min(history)
            if before - now <= PLATEAU_GAIN * abs(history[0]):
                raise lgb.callback.EarlyStopException(int(np.argmin(history)),
                                                      env.evaluation_result_list)

    callback.order = 40  # type: ignore[attr-defined]  # after LightGBM's early stopping
    return callback


def _fit(s: _Search, params: dict[str, Any], Xt: Any, target: np.ndarray, threads: int,
         seed: int, log_target: bool) -> Any:
    import lightgbm as lgb

    from mlwright.search.families.boosting import LightGBMFamily, _patience

    ctx = FitContext(**{**s.ctx(STYLE).__dict__, "n_features": Xt.shape[1],
                        "n_jobs": threads, "class_weight": None})
    family = LightGBMFamily()
    est = family.build({**params, "n_estimators": MAX_ROUNDS}, ctx)
    y = np.log1p(target) if log_target else target
    X, labels, weights, watch = _student_rows(Xt, y, s.task, seed)
    fit_kwargs: dict[str, Any] = {}
    if ctx.n_ordinal:
        fit_kwargs["categorical_feature"] = list(range(ctx.n_ordinal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X[~watch], labels[~watch],
                sample_weight=None if weights is None else weights[~watch],
                eval_set=[(X[watch], labels[watch])],
                eval_sample_weight=None if weights is None else [weights[watch]],
                callbacks=[lgb.early_stopping(_patience(est.learning_rate),
                                              first_metric_only=True, verbose=False),
                           _plateau(lgb)],
                **fit_kwargs)
    _single_threaded(est)
    return est


def _student(s: _Search, teacher: Ensemble, rows: np.ndarray, prep: Any, Xt: Any,
             params: dict[str, Any], threads: int, seed: int, classes: list[Any] | None,
             columns: list[str]) -> tuple[Ensemble, int]:
    """A student of ``teacher`` on the training rows ``rows`` (``Xt``: their design by the
    fitted ``prep``) and synthetic rows drawn from them."""
    rng = np.random.default_rng(seed)
    real = s.X.iloc[rows].reset_index(drop=True)
    synthetic = augment(real, _n_augment(len(rows)), rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = teacher.raw_predict(pd.concat([real, synthetic], ignore_index=True),
                                     compiled=False)
        extra = prep.transform(synthetic)
    design = (sp.vstack([Xt, extra], format="csr") if sp.issparse(Xt) or sp.issparse(extra)
              else np.concatenate([np.asarray(Xt), np.asarray(extra)]))
    log_target = s.log_target
    est = _fit(s, params, design, np.asarray(target, dtype=float), threads, seed, log_target)
    member: dict[str, Any] = {"family": "lightgbm", "trial": -1, "style": STYLE,
                              "estimator": est, "weight": 1.0,
                              "target_transform": "log" if log_target else None}
    if s.task is Task.REGRESSION:
        member["clip"] = (float(s.y[rows].min()), float(s.y[rows].max()))
    return Ensemble({STYLE: prep}, [member], s.task, classes, columns), len(synthetic)


def distill(s: _Search, members: list[TrialRecord], weights: dict[int, float],
            teacher: Ensemble, classes: list[Any] | None, columns: list[str]) -> Student:
    """The student of ``teacher`` (whose members are ``members`` with ``weights``) and its
    CV on the search's folds. Call before the search drops its fold models."""
    t0 = time.monotonic()
    notes: list[str] = []
    params = student_params(s)
    folds = s.folds(STYLE)
    workers = s.fold_workers
    threads = max(1, s.n_jobs // workers)
    n_folds = s.splits.n_folds

    def fold_student(j: int) -> tuple[Ensemble, np.ndarray, int]:
        fold_teacher, missing = fold_ensemble(s, members, weights, j, classes, columns)
        if fold_teacher is None:
            raise RuntimeError("no ensemble member kept its fold models")
        if missing:
            notes.append(f"fold {j}: the teacher's fold model lacks trials {missing} "
                         f"(their fold models were not kept)")
        tr, va = s.splits.folds[j]
        student, n_aug = _student(s, fold_teacher, tr, s._fold_preps[STYLE][j], folds[j][0],
                                  params, threads, s.seed + 7919 * (j + 1), classes, columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = student.raw_predict(s.X.iloc[va], compiled=False)
        return student, pred, n_aug

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(fold_student, range(n_folds)))
    oof = (np.zeros(len(s.y)) if s.task is Task.REGRESSION
           else np.zeros((len(s.y), len(classes or []))))
    fold_losses = []
    for (_, pred, _), (_, va) in zip(outcomes, s.splits.folds, strict=True):
        oof[va] = pred
        fold_losses.append(s.metric.loss(s.y[va], pred))
    if s.refits:
        everything = np.arange(len(s.y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            prep = s._prep(STYLE)
            Xt = prep.fit_transform(s.X, s.y)
        model, n_aug = _student(s, teacher, everything, prep, Xt, params, threads,
                                s.seed, classes, columns)
    else:  # the holdout student, as the holdout teacher: the one the CV scored
        model, _, n_aug = outcomes[0]
    cv_loss = s.metric.loss(s.y[s.mask], oof[s.mask])
    return Student(model=model, oof=oof, fold_losses=fold_losses, cv_loss=cv_loss,
                   seconds=time.monotonic() - t0, params=params, n_augmented=n_aug,
                   notes=notes)
