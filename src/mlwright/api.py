"""The public Python API: ``mw.train`` and friends. The CLI calls these, nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.data.kinds import ColumnKind
from mlwright.exceptions import ColumnNotFoundError
from mlwright.run import TrainResult

if TYPE_CHECKING:
    from mlwright.registry.reproduce import Reproduction

__all__ = ["reproduce", "train"]

log = get_logger(__name__)


# Training rows kept in the run folder (sample.parquet) to rebuild the report from it.
SAMPLE_ROWS = 5000


def _training_sample(df: pd.DataFrame, oof: pd.DataFrame, seed: int) -> pd.DataFrame:
    rows = np.flatnonzero(oof["in_validation"].to_numpy(dtype=bool))
    if len(rows) > SAMPLE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, SAMPLE_ROWS, replace=False))
    return df.iloc[rows]  # the index keeps each row's position in ``oof``


def train(data: Any, target: str, *, time_budget: float = 60.0, metric: str | None = None,
          task: str | None = None, seed: int = 0, n_trials: int | None = None,
          search: str = "bayes", families: list[str] | None = None, cv: int | str = "auto",
          groups: str | None = None, time: str | None = None, n_jobs: int = -1,
          class_weight: str | dict[Any, float] | None = None, threshold: str | float | None = None,
          on_trial: Callable[..., None] | None = None, started_at: float | None = None,
          cluster: Any = None, **load_options: Any) -> TrainResult:
    """Train the best model ``time_budget`` seconds allow for ``target``.

    Args:
        data: a DataFrame, or anything :func:`mlwright.load` reads (path, SQL URL...).
        target: the column to predict.
        time_budget: wall-clock seconds for search, ensembling and refit together.
        metric: "auto" / None (ROC AUC, log loss, RMSE by task) or a metric name.
        task: "auto" / None, "binary", "multiclass" or "regression".
        seed: the random seed of every split, sampler and model.
        n_trials: run this many trials, each (and the refit) to the end whatever the
            budget; with ``seed``, runs are reproducible at any budget.
        search: "bayes" (Optuna TPE), "random" or "grid".
        families: restrict the model zoo (e.g. ["lightgbm", "linear"]).
        cv: "auto", a number of folds, or "holdout".
        groups: a column whose groups never straddle a split (dropped from the features).
        time: a column ordering the rows; validation is always on later rows.
        class_weight: None or "balanced".
        threshold: choose the binary decision threshold ("f1", "balanced_accuracy", or a
            probability).
        on_trial: called after each trial with (TrialRecord, search state).
        started_at: the ``time.monotonic()`` the budget counts from (default: now), for a
            caller that spent part of it already (the CLI reading the table); at least a
            second is left. The recorded ``time_budget`` stays the one given.
        cluster: a Dask scheduler address (``tcp://HOST:8786``) or a ``distributed.Client``:
            the trials run on its workers, sharing one study and the budget; ensembling
            and the refit run here (``mlwright[cluster]``). None: everything runs here.
    """
    from mlwright.data.contract import learn_contract
    from mlwright.data.sources import load
    from mlwright.data.target import check_target
    from mlwright.search.engine import run_search
    from mlwright.search.splits import rare_class_rows

    now = monotonic()
    started_at = now if started_at is None else max(started_at, now - time_budget + 1.0)
    df = data if isinstance(data, pd.DataFrame) else load(data, **load_options)
    df = df.rename(columns=str)  # load() gives string names; a DataFrame may not
    resolved_task = check_target(df, target, task)
    for role, col in (("groups column", groups), ("time column", time)):
        if col is not None and col not in df.columns:
            raise ColumnNotFoundError(col, df.columns, role=role)
    df = df[df[target].notna()].reset_index(drop=True)
    # Rare classes go before the contract, so it, the model and the evidence share the rows.
    keep = rare_class_rows(df[target], resolved_task, target=target)
    if not keep.all():
        df = df[keep].reset_index(drop=True)
        resolved_task = check_target(df, target, task)
    contract = learn_contract(df, target=target, task=resolved_task.value)
    X = df.drop(columns=[c for c in (target, groups) if c is not None])
    # The contract's kinds decide preparation, so serving prepares exactly as training did.
    kinds = {c: ColumnKind(contract.kinds[c]) for c in X.columns}
    with contextlib.ExitStack() as stack:
        runner = None
        if cluster is not None:
            from mlwright.cluster import DaskTrials, connect

            runner = DaskTrials(stack.enter_context(connect(cluster)))
        result = run_search(
            X, df[target], task=resolved_task, metric=metric, time_budget=time_budget,
            n_trials=n_trials, search=search, families=families, cv=cv,
            groups=df[groups] if groups else None, time_column=df[time] if time else None,
            seed=seed, n_jobs=n_jobs, class_weight=class_weight, threshold=threshold,
            kinds=kinds, on_trial=on_trial, started_at=started_at, runner=runner)
    if result.classes is None:
        oof = pd.DataFrame({"y": df[target].to_numpy(), "prediction": result.oof})
    else:
        oof = pd.DataFrame(result.oof, columns=[f"proba_{c}" for c in result.classes])
        oof.insert(0, "y", df[target].to_numpy())
    oof["in_validation"] = result.oof_mask
    from mlwright.evaluate.explain import attach_reference

    # What explanations compare against (training design means), kept with the model.
    attach_reference(result.model, X, seed=seed)
    params = {"time_budget": time_budget, "metric": result.metric.name, "task":
              result.task.value, "seed": seed, "n_trials": n_trials, "search": search,
              "families": families, "cv": cv, "groups": groups, "time": time,
              "class_weight": class_weight, "threshold": threshold,
              "n_rows": len(df), "n_columns": X.shape[1]}
    return TrainResult(model=result.model, target=target, task=result.task,
                       metric=result.metric.name, cv_score=result.cv_score,
                       cv_scores=result.cv_scores, leaderboard=result.leaderboard(), oof=oof,
                       timings=result.timings, contract=contract, search=result, params=params,
                       sample=_training_sample(df, oof, seed), history=list(result.history))


def reproduce(ref: str, data: Any, *, tracking_uri: str | None = None,
              tolerance: float = 0.01, time_budget: float | None = None,
              registry: Any = None) -> Reproduction:
    """Retrain the registered version ``ref`` on ``data`` with its recorded arguments and
    seed (:func:`train`), and compare its CV score with the recorded one."""
    from mlwright.registry.reproduce import reproduce as replay

    return replay(ref, data, train=train, tracking_uri=tracking_uri, tolerance=tolerance,
                  time_budget=time_budget, registry=registry)
