"""The budgeted search: from a table and a target to the best ensemble the budget allows.

Order of work, all inside one wall-clock budget (fit + ensembling + refit):

1. a portfolio of strong default configurations, cheapest and most reliable first, so that a
   short budget already gives a good model;
2. Optuna (TPE by default) across the families that fit the problem, with fold-level
   pruning of hopeless trials;
3. greedy ensemble selection on out-of-fold predictions;
4. a refit of the chosen members on all rows, with the iterations early stopping found.

Time for step 4 is reserved while searching, from the measured cost of the best trials.
The shipped model is always the one the CV evaluated: a member whose refit cannot finish
within the budget ships as its fold models (a bagged member), never as a fit cut short.

Modules: ``session`` (clock, caches, cost model, one trial), ``portfolio`` (the order of
trials), ``refit`` (the final model), ``records`` (TrialRecord, SearchResult, leaderboard).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from mlwright._lazy import import_detached
from mlwright._logging import get_logger
from mlwright.data.kinds import ColumnKind, Task, infer_kinds
from mlwright.exceptions import ConfigError, MlwrightError
from mlwright.scoring import get_metric
from mlwright.search._base import ModelFamily, registered_families
from mlwright.search.ensemble import greedy_selection
from mlwright.search.limits import (
    Limited,
    Limits,
    Meter,
    fit_ensemble,
    fit_refit,
    fitting_candidates,
)
from mlwright.search.portfolio import _search_loop
from mlwright.search.records import SearchResult, TrialRecord, on_every_row
from mlwright.search.refit import (
    BAG_FROM,
    _choose_threshold,
    _holdout_ensemble,
    _refit,
    check_threshold,
    fold_ensemble,
    shippable,
)
from mlwright.search.runner import LocalTrials, TrialRunner
from mlwright.search.session import _Clock, _encode_target, _Search
from mlwright.search.splits import Splits, make_splits, rare_class_rows
from mlwright.search.trim import trim_weights

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

    from mlwright.search.distill import Student

__all__ = ["run_search"]

log = get_logger(__name__)


def _oof(record: TrialRecord) -> np.ndarray:
    assert record.oof is not None  # complete and partial trials keep their predictions
    return record.oof


def run_search(X: pd.DataFrame, y: pd.Series, *, task: Task | str | None = None,
               metric: str | None = None, time_budget: float = 60.0,
               n_trials: int | None = None, search: str = "bayes",
               families: list[str] | None = None, cv: int | str = "auto",
               groups: pd.Series | None = None, time_column: pd.Series | None = None,
               seed: int = 0, n_jobs: int = -1, class_weight: str | dict[Any, float] | None = None,
               threshold: str | float | None = None, kinds: dict[str, ColumnKind] | None = None,
               on_trial: Callable[[TrialRecord, Any], None] | None = None,
               started_at: float | None = None,
               runner: TrialRunner | None = None, trim: bool = False,
               distill: bool = False, limits: Limits | None = None) -> SearchResult:
    """Search, ensemble and refit within ``time_budget`` seconds. See module docstring.

    ``started_at`` (a ``time.monotonic()`` value) counts earlier work, such as loading the
    data and learning the contract, against the same budget. ``runner`` says where trials
    run (default: this process; ``mlwright.cluster.DaskTrials``: a Dask cluster's workers);
    ensembling and the refit run here either way.

    ``trim`` drops ensemble members while the CV loss stays within its noise
    (:mod:`mlwright.search.trim`); ``distill`` trains one LightGBM student of the final
    model (:mod:`mlwright.search.distill`), after the budget: its time is reported as
    ``timings["distill"]``, outside ``timings["total"]``. ``limits`` (a serving budget:
    single-record p50 latency, joblib size) keeps candidates over it alone out of the
    ensemble and drops members while the ensemble measures over it
    (:mod:`mlwright.search.limits`); the seconds spent measuring are ``timings["limits"]``,
    outside ``timings["total"]``, and the refit's deadline moves by as much.
    """
    optuna = import_detached("optuna")  # see there: never an import inside this frame

    clock = _Clock(time_budget, started_at)
    if search not in ("bayes", "random", "grid"):
        raise ConfigError(f"search must be 'bayes', 'random' or 'grid', got {search!r}.")
    # A dict {class: weight} is scikit-learn's own form (AutoClassifier passes it through).
    if not (class_weight in (None, "balanced") or isinstance(class_weight, dict)):
        raise ConfigError(f"class_weight must be None, 'balanced' or a dict of class: weight, "
                          f"got {class_weight!r}.")
    check_threshold(threshold)
    task = Task(task) if task not in (None, "auto") else None
    from mlwright.data.target import check_target

    frame = X.assign(__target__=y.to_numpy())
    task = check_target(frame, "__target__", task)
    mask = y.notna().to_numpy()
    # Classes too rare to validate are dropped here, before any trial could fail on them.
    keep = rare_class_rows(y.where(mask), task, target=str(y.name or "target"))
    if not keep.all() and task is Task.MULTICLASS and y.loc[mask & keep].nunique() == 2:
        task = Task.BINARY  # two classes left after dropping rare ones
    mask = mask & keep
    X, y = X.loc[mask].reset_index(drop=True), y.loc[mask].reset_index(drop=True)
    rows = np.flatnonzero(mask)
    if groups is not None:
        groups = pd.Series(groups).iloc[rows].reset_index(drop=True)
    if time_column is not None:
        time_column = pd.Series(time_column).iloc[rows].reset_index(drop=True)
    X = X.rename(columns=str)  # prep looks columns up by name; 0 and "0" must agree
    kinds = dict(kinds) if kinds is not None else infer_kinds(X)
    kinds = {c: ColumnKind(kinds.get(c, ColumnKind.NUMERIC)) for c in X.columns}
    y_enc, classes = _encode_target(y, task)
    n_classes = len(classes) if classes else 0
    if isinstance(class_weight, dict) and classes:  # user labels -> encoded classes 0..K-1
        unknown = [k for k in class_weight if k not in classes]
        if unknown:
            raise ConfigError(f"class_weight names classes the target does not have: "
                              f"{unknown!r}; the classes are {classes!r}.")
        class_weight = {classes.index(k): float(w) for k, w in class_weight.items()}
    metric_obj = get_metric(metric, task)
    n_jobs = (os.cpu_count() or 1) if n_jobs in (-1, None) else int(n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rare classes: see make_splits
        splits = make_splits(y_enc, task, cv=cv, groups=groups, time=time_column, seed=seed)

    available = registered_families()
    names = families or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"Unknown model families {unknown}; expected some of "
                          f"{sorted(available)}.")
    zoo = [available[n]() for n in names]
    zoo = [f for f in zoo if f.is_available()]
    if not zoo:
        raise ConfigError("None of the requested model families is installed.")

    s = _Search(X, y_enc, task=task, metric=metric_obj, kinds=kinds, splits=splits,
                clock=clock, families=zoo, n_trials=n_trials, search=search, seed=seed,
                n_jobs=n_jobs, class_weight=class_weight, n_classes=n_classes,
                on_trial=on_trial)
    runner = runner if runner is not None else LocalTrials()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler: BaseSampler = (
            optuna.samplers.RandomSampler(seed=seed) if search != "bayes" else
            # Trials running at once: TPE treats the running ones as bad (constant liar),
            # so that it does not suggest the same region to every idle worker.
            optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                       n_startup_trials=8, constant_liar=runner.slots > 1)
        )
        study = optuna.create_study(
            direction="minimize", sampler=sampler,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1))
    runner.open(s)
    try:
        with _one_blas_thread():
            return _finish(s, study, zoo, runner, time_budget=time_budget,
                           threshold=threshold, classes=classes, columns=list(X.columns),
                           trim=trim, distill=distill, limits=limits)
    finally:
        runner.close(s)


def _one_blas_thread() -> Any:
    """BLAS with one thread while searching and refitting. The solvers' BLAS calls are
    vector operations too small to share: on 2 cores, two OpenBLAS threads made one L-BFGS
    logistic regression on TF-IDF 2x slower on a lightly loaded machine (8 s, not 4 s), up
    to 9x slower on a busy one, and parallel folds already keep the cores busy. Boosting
    libraries are not affected (they set their own OpenMP threads)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _finish(s: _Search, study: Any, zoo: list[ModelFamily], runner: TrialRunner, *,
            time_budget: float,
            threshold: str | float | None, classes: list[Any] | None,
            columns: list[str], trim: bool = False, distill: bool = False,
            limits: Limits | None = None) -> SearchResult:
    """Search, ensemble selection and refit (see the module docstring)."""
    clock, task, metric_obj, y_enc, splits = s.clock, s.task, s.metric, s.y, s.splits
    _search_loop(s, study, zoo, runner)
    if not any(r.status in ("complete", "partial") or r.error for r in s.records):
        # The budget ran out before any trial (loading the table took it all): a model
        # slightly late beats an error, so one default trial runs at its smallest, each fold
        # stopping at its first round or chunk (its deadline is the run's, already past).
        log.warning("%.3g s was too short for one trial; running one default trial at its "
                    "smallest, slightly past the budget", time_budget)
        s.last_chance = True
        s.n_trials = len(s.records) + 1
        _search_loop(s, study, zoo, runner, first_number=len(s.records))

    timings = {"search": clock.elapsed()}
    done = [r for r in s.records if r.status == "complete"]
    if not done:
        # A budget too short for one full trial: the best trial cut short, on its folds.
        partial = sorted((r for r in s.records if r.status == "partial"), key=lambda r: r.loss)
        if partial:
            done = partial[:1]
            covered = partial[0].covered
            assert covered is not None  # a partial trial records the folds it covered
            s.mask = covered
            splits = Splits([f for f in splits.folds if covered[f[1]].all()],
                            splits.kind)
    if not done:
        unsuited = {name: why for name, why in _not_run(s).items()
                    if not why.startswith(("no time", "not reached"))}
        if len(unsuited) == len(s.families):  # no budget would help: say why each refused
            raise ConfigError(
                "None of the allowed model families can train on this table: "
                + "; ".join(f"{name}: {why}" for name, why in unsuited.items())
                + ". Allow other families (--families), or drop the columns they refuse.")
        failed = [r.error for r in s.records if r.error]
        raise MlwrightError(
            f"No model could be trained within the {time_budget:g} s budget"
            + (f" (errors: {'; '.join(failed[:3])})" if failed else "")
            + ". Give a larger --budget or read a --sample of the data."
        )
    # ---- ensemble selection on out-of-fold predictions ----------------------------------------
    # Trials' predictions cover the validated rows only (s.validated): the ensemble is
    # chosen and scored there, and spread over the table's rows once, at the end.
    t0 = time.monotonic()
    y_val, mask = s.y_validated, s.mask[s.validated]
    folds = [(tr, s.validated_at(va)) for tr, va in splits.folds]
    candidates = shippable(s, s.candidate_pool(sorted(done, key=lambda r: r.loss)), clock)
    limited = meter = None
    if limits is not None:
        meter = Meter(s, limits, classes, columns)
        limited = Limited(limits)
        candidates, weights_by_pos = fitting_candidates(
            meter, candidates, lambda pool: greedy_selection(
                [_oof(r) for r in pool], y_val, metric_obj, mask=mask), limited)
        oofs = [_oof(r) for r in candidates]
    else:
        oofs = [_oof(r) for r in candidates]
        weights_by_pos = greedy_selection(oofs, y_val, metric_obj, mask=mask)
    weights = {candidates[i].number: w for i, w in weights_by_pos.items()}
    members_rec = [candidates[i] for i in weights_by_pos]
    # Python's sum, in member order: the same float additions as ever (np.sum may pair them).
    oof = cast(np.ndarray, sum(oofs[i] * w for i, w in weights_by_pos.items()))
    trimmed = None
    if trim and len(weights) > 1:
        trimmed = trim_weights({r.number: _oof(r) for r in members_rec}, weights, y_val,
                               metric_obj, folds, mask, seed=s.seed,
                               families={r.number: r.family for r in members_rec})
        full = (list(members_rec), dict(weights))
        kept = [i for i in weights_by_pos if candidates[i].number in trimmed.weights]
        weights = dict(trimmed.weights)
        members_rec = [candidates[i] for i in kept]
        oof = cast(np.ndarray, sum(oofs[i] * weights[candidates[i].number] for i in kept))
    if meter is not None and limited is not None:
        weights = fit_ensemble(meter, members_rec, weights,
                               {r.number: _oof(r) for r in members_rec}, y_val, metric_obj,
                               mask, limited)
        members_rec = [r for r in members_rec if r.number in weights]
        oof = cast(np.ndarray, sum(_oof(r) * weights[r.number] for r in members_rec))
        # Measuring is the budget's price, reported apart: the refit keeps its reserve.
        limited.seconds = meter.seconds
        clock.deadline += meter.seconds
        timings["limits"] = meter.seconds
    timings["ensemble"] = time.monotonic() - t0 - timings.get("limits", 0.0)
    fold_losses = [metric_obj.loss(y_val[va], oof[va]) for _, va in folds]
    cv_loss = metric_obj.loss(y_val[mask], oof[mask])

    # ---- refit on all rows (k-fold), or keep the holdout models ---------------------------------
    t0 = time.monotonic()
    if s.refits:
        bag = time_budget >= BAG_FROM and limits is None and not s.reproducible
        model, weights = _refit(s, members_rec, weights, classes, columns, clock, bag=bag)
    else:
        model = _holdout_ensemble(s, members_rec, weights, classes, columns)
    timings["refit"] = time.monotonic() - t0
    if meter is not None and limited is not None:
        model, weights = fit_refit(meter, model, weights,
                                   {r.number: _oof(r) for r in members_rec}, y_val,
                                   metric_obj, mask, limited)
        if len(weights) < len(members_rec):
            members_rec = [r for r in members_rec if r.number in weights]
            oof = cast(np.ndarray, sum(_oof(r) * weights[r.number] for r in members_rec))
            fold_losses = [metric_obj.loss(y_val[va], oof[va]) for _, va in folds]
            cv_loss = metric_obj.loss(y_val[mask], oof[mask])
        limited.seconds = timings["limits"] = meter.seconds
    if threshold is not None and task is Task.BINARY:
        model.threshold = _choose_threshold(y_val[mask], oof[mask], threshold)
    timings["total"] = clock.elapsed() - timings.get("limits", 0.0)
    # After the budget, both measured and reported on their own (see decision 0029).
    if trimmed is not None and trimmed.dropped:
        t0 = time.monotonic()
        trimmed.measured = _measure_trim(s, full, (members_rec, weights), classes, columns)
        timings["trim"] = time.monotonic() - t0
    student = None
    if distill:
        t0 = time.monotonic()
        student = _distill(s, members_rec, weights, model, classes, columns, threshold)
        timings["distill"] = time.monotonic() - t0
    for r in s.records:
        r.estimator = r.fold_models = None  # only the ensemble keeps models
    return SearchResult(model=model, task=task, metric=metric_obj, trials=s.records,
                        weights=weights, oof=on_every_row(oof, s.validated, len(y_enc)),
                        oof_mask=s.mask, y_encoded=y_enc,
                        classes=classes, cv_loss=cv_loss, fold_losses=fold_losses,
                        splits_kind=splits.kind, timings=timings, history=s.history,
                        kinds=s.kinds, trim=trimmed, student=student, not_run=_not_run(s),
                        limits=limited,
                        validated=None if len(s.validated) == len(y_enc) else s.validated)


def _not_run(s: _Search) -> dict[str, str]:
    """Each allowed family without a trial, and why: not suited to the table (its own
    reason), or the budget ran out first (with the budget its estimate says it needs)."""
    out: dict[str, str] = {}
    for f in s.families:
        if s.tried(f.name):
            continue
        ctx = s.ctx(f.prep_style)
        why = f.why_unsupported(ctx)
        if why is None and not f.supports(ctx):
            why = "its supports() says it does not fit this table"
        if why is None and s.reproducible:
            why = f"not reached: the {s.n_trials} trials of --trials ran out first"
        if why is None:
            spent = s.clock.deadline - s.clock.start
            need = s.estimate_seconds(f, s.first_rung(f))
            why = (f"no time: the budget ran out before it (its first trial needs about "
                   f"{need:.1f} s; --budget {spent + need + 5:.0f} would allow it)")
        out[f.name] = why
    return out


def _measure_trim(s: _Search, full: tuple[list[TrialRecord], dict[int, float]],
                  kept: tuple[list[TrialRecord], dict[int, float]],
                  classes: list[Any] | None, columns: list[str]) -> dict[str, Any]:
    """Single-row latency and size of the full and the trimmed ensemble, measured on
    stand-ins built of each member's fold-0 model (the dropped members are never refit)."""
    from mlwright.search.latency import measure

    out: dict[str, Any] = {"on": "fold-0 models"}
    rows = s.X.iloc[s.splits.folds[0][1][:100]]
    for name, (recs, weights) in (("full", full), ("trimmed", kept)):
        stand_in, missing = fold_ensemble(s, recs, weights, 0, classes, columns)
        if stand_in is None or missing:
            return {"on": "fold-0 models", "error": f"trials {missing} kept no fold models"}
        try:
            out[name] = measure(stand_in, rows)
        except Exception as exc:  # a measurement must not lose the trained model
            return {"on": "fold-0 models", "error": f"{type(exc).__name__}: {exc}"}
    return out


def _distill(s: _Search, members: list[TrialRecord], weights: dict[int, float], model: Any,
             classes: list[Any] | None, columns: list[str],
             threshold: str | float | None) -> Student | None:
    from mlwright.search.distill import distill

    if any(r.status != "complete" for r in members):
        log.warning("--distill: skipped, the ensemble holds a trial cut short")
        return None
    try:
        student = distill(s, members, weights, model, classes, columns)
    except MlwrightError:
        raise
    except Exception as exc:  # the teacher is trained; a failed student must not lose it
        log.warning("--distill failed (%s: %s); the teacher ships alone",
                    type(exc).__name__, exc)
        return None
    if threshold is not None and s.task is Task.BINARY:
        student.model.threshold = _choose_threshold(s.y[s.mask], student.oof[s.mask],
                                                    threshold)
    return student
