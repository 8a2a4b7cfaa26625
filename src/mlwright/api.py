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
from mlwright.exceptions import ColumnNotFoundError, ConfigError
from mlwright.run import TrainResult

if TYPE_CHECKING:
    from mlwright.registry.reproduce import Reproduction
    from mlwright.search.limits import Limits

__all__ = ["reproduce", "train", "train_large"]

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
          cluster: Any = None, trim: bool = False, distill: bool | str = False,
          max_latency_ms: float | None = None, max_size_mb: float | None = None,
          **load_options: Any) -> TrainResult:
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
        trim: drop ensemble members while the CV score stays within its noise (the
            standard error over the folds); what was dropped is in ``TrainResult.trim``.
        distill: True: also train one LightGBM student of the final model and compare
            them (``TrainResult.distill``: CV intervals on the same folds and measured
            single-row latencies); the teacher ships, the student is kept beside it
            (``alternates["student"]``, ``student.joblib``). "ship": the student ships
            (its out-of-fold predictions and CV are the result's), the teacher is kept
            beside it. Distillation runs after the budget; its seconds are
            ``timings["distill"]``.
        max_latency_ms: a serving budget: the single-record p50 latency (milliseconds) of
            the model through the compiled predictor, as the server calls it. Measured,
            not estimated: a trial whose model alone is over it is not an ensemble member,
            and members are dropped while the ensemble measures over it (after ``trim``).
            The shipped model is measured again after the refit; everything is in
            ``TrainResult.limits``. :class:`~mlwright.exceptions.ServingBudgetError` when
            no model alone fits (raised before anything is refit or saved).
        max_size_mb: a serving budget on the model's size (its ``model.joblib``, MB), as
            ``max_latency_ms``; both may be given.
    """
    from mlwright.data.contract import learn_contract
    from mlwright.data.sources import load
    from mlwright.data.target import check_target
    from mlwright.search.engine import run_search
    from mlwright.search.limits import Limits
    from mlwright.search.splits import rare_class_rows

    if distill not in (False, True, "ship"):
        raise ConfigError(f"distill must be False, True or 'ship', got {distill!r}.")
    limits = Limits.of(max_latency_ms, max_size_mb)
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
            kinds=kinds, on_trial=on_trial, started_at=started_at, runner=runner,
            trim=trim, distill=bool(distill), limits=limits)
    model, raw_oof, cv_score, cv_scores = (result.model, result.oof, result.cv_score,
                                           result.cv_scores)
    alternates: dict[str, Any] = {}
    comparison = None
    if result.student is not None:
        from mlwright.evaluate.distill import side_by_side

        student = result.student
        ship = distill == "ship"
        comparison = side_by_side(result, X.iloc[:100], contract=contract, seed=seed,
                                  shipped="student" if ship else "teacher")
        if ship:  # the student's evidence is the result's: the model shipped is evaluated
            alternates["teacher"] = model
            model, raw_oof = student.model, student.oof
            cv_score = result.metric.to_score(student.cv_loss)
            cv_scores = [result.metric.to_score(v) for v in student.fold_losses]
        else:
            alternates["student"] = student.model
    if result.classes is None:
        oof = pd.DataFrame({"y": df[target].to_numpy(), "prediction": raw_oof})
    else:
        oof = pd.DataFrame(raw_oof, columns=[f"proba_{c}" for c in result.classes])
        oof.insert(0, "y", df[target].to_numpy())
    oof["in_validation"] = result.oof_mask
    from mlwright.evaluate.explain import attach_reference

    # What explanations compare against (training design means), kept with the model.
    attach_reference(model, X, seed=seed)
    params = {"time_budget": time_budget, "metric": result.metric.name, "task":
              result.task.value, "seed": seed, "n_trials": n_trials, "search": search,
              "families": families, "cv": cv, "groups": groups, "time": time,
              "class_weight": class_weight, "threshold": threshold,
              "n_rows": len(df), "n_columns": X.shape[1]}
    if trim:  # recorded only when asked for: a default run's files are as they were
        params["trim"] = True
    if distill:
        params["distill"] = distill
    limited = None
    if result.limits is not None:
        params.update({k: v for k, v in (("max_latency_ms", max_latency_ms),
                                         ("max_size_mb", max_size_mb)) if v is not None})
        limited = result.limits.to_dict(result.metric)
        limited["shipped"] = _measure_shipped(model, X, contract, result.limits.limits,
                                              result.timings)
    return TrainResult(model=model, target=target, task=result.task,
                       metric=result.metric.name, cv_score=cv_score,
                       cv_scores=cv_scores, leaderboard=result.leaderboard(), oof=oof,
                       timings=result.timings, contract=contract, search=result, params=params,
                       sample=_training_sample(df, oof, seed), history=list(result.history),
                       trim=None if result.trim is None else result.trim.to_dict(result.metric),
                       distill=comparison, alternates=alternates, limits=limited)


def _measure_shipped(model: Any, X: pd.DataFrame, contract: Any, limits: Limits,
                     timings: dict[str, float]) -> dict[str, Any]:
    """The shipped model against the serving budget, measured as the server predicts (its
    contract at hand); a warning with the figures when it is over (a refit on all rows
    grows other trees than the fold models the ensemble was measured as)."""
    from mlwright.search.latency import measure
    from mlwright.search.limits import REPEAT, figures

    t0 = monotonic()
    try:
        fig: dict[str, Any] = figures(measure(model, X.iloc[:100], repeat=REPEAT,
                                              contract=contract))
    except Exception as exc:  # a measurement must not lose the trained model
        log.warning("the shipped model could not be measured against the serving budget "
                    "(%s: %s)", type(exc).__name__, exc)
        return {"on": "shipped model", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        timings["limits"] = timings.get("limits", 0.0) + monotonic() - t0
    fig["on"] = "shipped model"
    fig["within"] = not limits.over(fig)
    fig["text"] = limits.text(fig)
    if not fig["within"]:
        log.warning("the shipped model is over the serving budget: %s (its fold-0 stand-in "
                    "was within it; the refit on all rows differs)", fig["text"])
    return fig


def reproduce(ref: str, data: Any, *, tracking_uri: str | None = None,
              tolerance: float = 0.01, time_budget: float | None = None,
              registry: Any = None) -> Reproduction:
    """Retrain the registered version ``ref`` on ``data`` with its recorded arguments and
    seed (:func:`train`), and compare its CV score with the recorded one."""
    from mlwright.registry.reproduce import reproduce as replay

    return replay(ref, data, train=train, tracking_uri=tracking_uri, tolerance=tolerance,
                  time_budget=time_budget, registry=registry)


#: Rows the search sees by default when training on a Parquet dataset out of core.
LARGE_SAMPLE_ROWS = 100_000
#: Rows held out of the out-of-core refit to evaluate it (at most a fifth of the rows).
LARGE_HOLDOUT_ROWS = 50_000
#: Families that refit on a Dask cluster (lightgbm.dask).
DASK_FAMILIES = ("lightgbm",)


def train_large(data: Any, target: str, *, sample_rows: int = LARGE_SAMPLE_ROWS,
                holdout_rows: int = LARGE_HOLDOUT_ROWS, time_budget: float = 60.0,
                metric: str | None = None, task: str | None = None, seed: int = 0,
                n_trials: int | None = None, search: str = "bayes",
                families: list[str] | None = None, cv: int | str = "auto",
                n_jobs: int = -1, class_weight: str | None = None,
                on_trial: Callable[..., None] | None = None, started_at: float | None = None,
                cluster: Any = None, progress: Callable[[str], None] | None = None
                ) -> TrainResult:
    """Train on a Parquet dataset (a file, a folder or a glob) larger than memory.

    1. One pass over the files keeps a seeded sample (``sample_rows``) and a holdout
       (``holdout_rows``), disjoint, and fingerprints every row; DuckDB computes the
       contract's figures over every row (:func:`learn_contract_parquet`).
    2. The normal search (:func:`train`) runs on the sample (LightGBM only unless
       ``families`` says otherwise; its trials on ``cluster`` when given).
    3. The best LightGBM configuration of the search is refit on every row but the holdout
       with ``lightgbm.dask`` on ``cluster`` (an address or a Client; None: a LocalCluster
       of this machine, closed at the end), the preprocessing fitted on the sample applied
       piece by piece on the workers (:func:`mlwright.cluster.large.refit_lightgbm`).
    4. The refit model is scored on the holdout, which it never saw.

    The result's CV figures are the chosen configuration's on the sample; its
    ``params["large"]`` says what was evaluated where (rows, sample, holdout score).
    """
    from mlwright.cluster.large import local_cluster, refit_lightgbm
    from mlwright.data.contract.outofcore import learn_contract_parquet
    from mlwright.data.dataset import open_parquet_dataset
    from mlwright.exceptions import ConfigError, TargetError
    from mlwright.prep.pipeline import build_preprocessor
    from mlwright.prep.plan import plan_columns
    from mlwright.scoring import get_metric
    from mlwright.search._base import FitContext, get_family
    from mlwright.search.ensemble import Ensemble

    say = progress or (lambda message: log.info("%s", message))
    t0 = monotonic()
    dataset = open_parquet_dataset(data, target=target)
    n = dataset.n_rows
    holdout = min(0.2, holdout_rows / n)
    share = min(1.0 - holdout, sample_rows / n)
    say(f"Reading {n:,} rows of {len(dataset.files)} Parquet files ({len(dataset.pieces)} "
        f"pieces): a sample of about {share * n:,.0f} rows, a holdout of about "
        f"{holdout * n:,.0f}, the fingerprint")
    kept, fingerprint = dataset.scan(seed, {"holdout": (0.0, holdout),
                                            "sample": (holdout, holdout + share)})
    sample, held = kept["sample"].reset_index(drop=True), kept["holdout"]
    if sample[target].notna().sum() < 2:
        raise TargetError(f"The sample of {data!r} has no rows with the target {target!r}; "
                          f"give a larger sample_rows (--sample-rows).")
    say(f"Contract over all {n:,} rows (DuckDB)")
    contract = learn_contract_parquet(dataset, sample, target, task=task,
                                      fingerprint=fingerprint)
    t_scan = monotonic() - t0
    chosen = families or list(DASK_FAMILIES)
    if not set(chosen) & set(DASK_FAMILIES):
        raise ConfigError(f"Training out of core refits a LightGBM model on all rows; the "
                          f"families {chosen} have none. Add lightgbm to --families.")
    say(f"Searching on the sample of {len(sample):,} rows")
    small = train(sample, target, time_budget=time_budget, metric=metric, task=task,
                  seed=seed, n_trials=n_trials, search=search, families=chosen, cv=cv,
                  n_jobs=n_jobs, class_weight=class_weight, on_trial=on_trial,
                  started_at=started_at, cluster=cluster)
    result = small.search
    records = [r for r in result.trials if r.status == "complete"
               and r.family in DASK_FAMILIES]
    if not records:
        raise ConfigError("No LightGBM trial completed on the sample; give a larger budget "
                          "or more --trials.")
    rec = min(records, key=lambda r: r.loss)
    family = get_family(rec.family)
    X = sample.drop(columns=[target])
    keep = sample[target].notna()
    if result.classes is not None:
        keep &= sample[target].isin(result.classes)
    kinds = {c: ColumnKind(contract.kinds[c]) for c in X.columns}
    plan = plan_columns(kinds)
    prep = build_preprocessor(plan, rec.style, task=result.task)
    ys = sample.loc[keep, target]
    y_fit = (ys.map({c: i for i, c in enumerate(result.classes)}).to_numpy(dtype=np.int64)
             if result.classes is not None else ys.to_numpy(dtype=np.float64))
    prep.fit(X[keep], y_fit)
    n_ordinal = plan.n_ordinal if rec.style == "tree" else 0
    ctx = FitContext(task=result.task, n_classes=len(result.classes or []), n_rows=n,
                     n_features=len(prep.get_feature_names_out()), n_ordinal=n_ordinal,
                     seed=seed, n_jobs=1, class_weight=class_weight)
    estimator = family.build(family.refit_params(dict(rec.params), rec.infos, ctx), ctx)
    t1 = monotonic()
    with contextlib.ExitStack() as stack:
        if cluster is None:
            say("Starting a local Dask cluster for the refit")
            client = stack.enter_context(local_cluster())
        else:
            from mlwright.cluster import connect

            client = stack.enter_context(connect(cluster))
        local, seen = refit_lightgbm(
            client, dataset, estimator=estimator, prep=prep, target=target,
            classes=result.classes, holdout=holdout, seed=seed, n_ordinal=n_ordinal,
            log_target=rec.target_transform == "log", progress=say)
    t_refit = monotonic() - t1
    member: dict[str, Any] = {"family": rec.family, "trial": rec.number, "style": rec.style,
                              "estimator": local, "weight": 1.0,
                              "target_transform": rec.target_transform}
    if result.classes is None:
        spec = contract.column(target).stats.numeric
        if spec is not None:
            member["clip"] = (spec.min, spec.max)
    model = Ensemble({rec.style: prep}, [member], result.task, result.classes, list(X.columns))
    from mlwright.evaluate.explain import attach_reference

    attach_reference(model, X, seed=seed)
    metric_obj = get_metric(result.metric.name, result.task.value)
    held = held[held[target].notna()]
    if result.classes is not None:
        held = held[held[target].isin(result.classes)]
    holdout_score = None
    if len(held):
        say(f"Scoring the refit model on {len(held):,} held-out rows")
        if result.classes is None:
            pred = model.predict(held)
            y_true = held[target].to_numpy(dtype=np.float64)
        else:
            pred = model.predict_proba(held)
            y_true = held[target].map({c: i for i, c in enumerate(result.classes)}
                                      ).to_numpy(dtype=np.int64)
        holdout_score = metric_obj.score(y_true, pred)
    cv_scores = [metric_obj.to_score(v) for v in rec.fold_losses]
    oof = small.oof.copy()
    if rec.oof is not None:
        cols = [c for c in oof.columns if c not in ("y", "in_validation")]
        oof[cols] = result.trial_oof(rec).reshape(len(oof), len(cols))
    large = {"source": str(data), "rows": n, "files": len(dataset.files),
             "sample_rows": len(sample), "holdout_rows": len(held),
             "refit_rows": seen["rows"], "refit_dropped": seen["dropped"],
             "refit_workers": seen["workers"], "trial": rec.number, "family": rec.family,
             "n_estimators": int(estimator.get_params().get("n_estimators", 0)),
             "cv_on_sample": metric_obj.to_score(rec.loss),
             f"holdout_{metric_obj.name}": holdout_score}
    say(f"Refit on {seen['rows']:,} rows; CV {metric_obj.name} on the sample "
        f"{large['cv_on_sample']:.5g}, holdout {metric_obj.name} "
        + ("n/a" if holdout_score is None else f"{holdout_score:.5g}")
        + f" on {len(held):,} rows")
    params = {**small.params, "n_rows": n, "large": large}
    timings = {**small.timings, "scan": t_scan, "refit": t_refit,
               "total": monotonic() - t0}
    return TrainResult(model=model, target=target, task=result.task, metric=metric_obj.name,
                       cv_score=metric_obj.to_score(rec.loss), cv_scores=cv_scores,
                       leaderboard=small.leaderboard, oof=oof, timings=timings,
                       contract=contract, search=result, params=params, sample=small.sample,
                       history=small.history, holdout=held)
