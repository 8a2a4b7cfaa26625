"""The budgeted search: from a table and a target to the best ensemble the budget allows.

Order of work, all inside one wall-clock budget (fit + ensembling + refit):

1. a portfolio of strong default configurations, cheapest and most reliable first, so that a
   short budget already gives a good model;
2. Optuna (TPE by default) across the families that fit the problem, with fold-level
   pruning of hopeless trials;
3. greedy ensemble selection on out-of-fold predictions;
4. a refit of the chosen members on all rows, with the iterations early stopping found.

Time for step 4 is reserved while searching, from the measured cost of the best trials.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlwright._logging import get_logger
from mlwright.data.kinds import ColumnKind, Task, infer_kinds
from mlwright.exceptions import ConfigError, MlwrightError
from mlwright.prep import build_preprocessor, plan_columns
from mlwright.search._base import FitContext, FitInfo, ModelFamily, registered_families
from mlwright.search.ensemble import Ensemble, full_proba, greedy_selection, predict_values
from mlwright.search.metrics import Metric, get_metric
from mlwright.search.splits import Splits, make_splits, rare_class_rows

__all__ = ["SearchResult", "TrialRecord", "leaderboard", "run_search"]

log = get_logger(__name__)

# Leave this share of the budget (at least 1 s) for ensembling and bookkeeping.
_SAFETY = 0.03
MAX_TRIAL_SHARE = 0.4


@dataclass
class TrialRecord:
    number: int
    family: str
    params: dict[str, Any]
    style: str
    target_transform: str | None = None
    status: str = "running"  # complete, pruned, timeout, failed, skipped
    loss: float = math.inf
    fold_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    fold_seconds: list[float] = field(default_factory=list)
    infos: list[FitInfo] = field(default_factory=list)
    oof: np.ndarray | None = None
    covered: np.ndarray | None = None  # rows with an out-of-fold prediction ("partial")
    estimator: Any = None  # the fitted model, kept in holdout mode (no refit there)
    error: str | None = None
    finished_at: float = 0.0


@dataclass
class SearchResult:
    model: Ensemble
    task: Task
    metric: Metric
    trials: list[TrialRecord]
    weights: dict[int, float]
    oof: np.ndarray
    oof_mask: np.ndarray
    y_encoded: np.ndarray
    classes: list[Any] | None
    cv_loss: float
    fold_losses: list[float]
    splits_kind: str
    timings: dict[str, float]
    history: list[tuple[float, float]]  # (seconds since start, best loss so far)
    kinds: dict[str, ColumnKind]

    @property
    def cv_score(self) -> float:
        return self.metric.to_score(self.cv_loss)

    @property
    def cv_scores(self) -> list[float]:
        return [self.metric.to_score(v) for v in self.fold_losses]

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard(self.trials, self.metric, self.weights)


def leaderboard(trials: list[TrialRecord], metric: Metric,
                weights: dict[int, float] | None = None) -> pd.DataFrame:
    """One row per trial that ran, best first, in the metric's own units."""
    weights = weights or {}
    rows = []
    for t in trials:
        if t.status == "skipped":
            continue
        scores = [metric.to_score(v) for v in t.fold_losses]
        rows.append({
            "trial": t.number, "family": t.family, "status": t.status,
            metric.name: metric.to_score(t.loss) if math.isfinite(t.loss) else np.nan,
            "std": float(np.std(scores)) if len(scores) > 1 else np.nan,
            "seconds": round(t.seconds, 2),
            "weight": round(weights.get(t.number, 0.0), 3),
            "target": t.target_transform or "",
            "params": _short_params(t.params),
        })
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    board = board.sort_values(metric.name, ascending=not metric.greater_is_better,
                              na_position="last", kind="stable")
    return board.reset_index(drop=True)


def _short_params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


class _Clock:
    def __init__(self, budget: float, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.deadline = self.start + budget

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _encode_target(y: pd.Series, task: Task) -> tuple[np.ndarray, list[Any] | None]:
    if task is Task.REGRESSION:
        return y.to_numpy(dtype=float), None
    classes = sorted(pd.unique(y.dropna()), key=lambda v: (str(type(v)), v))
    lookup = {c: i for i, c in enumerate(classes)}
    return y.map(lookup).to_numpy(dtype=np.int64), list(classes)


def _log_target_helps(y: np.ndarray) -> bool:
    # Worth trying on positive, right-skewed targets (prices, counts).
    return bool(np.all(y > 0) and pd.Series(y).skew() > 1.0)


class _Search:
    """One run of the search. Holds the caches that make trials cheap."""

    def __init__(self, X: pd.DataFrame, y: np.ndarray, *, task: Task, metric: Metric,
                 kinds: dict[str, ColumnKind], splits: Splits, clock: _Clock,
                 families: list[ModelFamily], n_trials: int | None, search: str, seed: int,
                 n_jobs: int, class_weight: str | None, n_classes: int,
                 on_trial: Callable[[TrialRecord, _Search], None] | None) -> None:
        self.X, self.y, self.task, self.metric = X, y, task, metric
        self.splits, self.clock, self.seed, self.n_jobs = splits, clock, seed, n_jobs
        self.class_weight, self.n_classes, self.on_trial = class_weight, n_classes, on_trial
        self.n_trials, self.search = n_trials, search
        self.kinds = kinds
        self.plan = plan_columns(kinds)
        self.families = families
        self.records: list[TrialRecord] = []
        self.history: list[tuple[float, float]] = []
        self._folds: dict[str, list[tuple[Any, Any]]] = {}
        self._fold_preps: dict[str, list[Any]] = {}
        self._prep_seconds: dict[str, float] = {}
        self._ctx: dict[str, FitContext] = {}
        self.log_target = task is Task.REGRESSION and _log_target_helps(y)
        self.mask = splits.covered(len(y))

    # ---- preprocessing, cached per style and fold -------------------------------------------
    def _prep(self, style: str) -> Any:
        return build_preprocessor(self.plan, style, task=self.task.value)

    def folds(self, style: str) -> list[tuple[Any, Any]]:
        if style not in self._folds:
            t0 = time.monotonic()
            out, preps = [], []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                for tr, va in self.splits.folds:
                    prep = self._prep(style)
                    Xtr = prep.fit_transform(self.X.iloc[tr], self.y[tr])
                    out.append((Xtr, prep.transform(self.X.iloc[va])))
                    preps.append(prep)
            self._fold_preps[style] = preps
            self._folds[style] = out
            self._prep_seconds[style] = (time.monotonic() - t0) / len(self.splits.folds)
            Xtr = out[0][0]
            self._ctx[style] = FitContext(
                task=self.task, n_classes=self.n_classes, n_rows=len(self.y),
                n_features=Xtr.shape[1], n_ordinal=self.plan.n_ordinal if style == "tree" else 0,
                sparse=sp.issparse(Xtr), has_text=self.plan.has_text, seed=self.seed,
                n_jobs=self.n_jobs, class_weight=self.class_weight)
        return self._folds[style]

    def ctx(self, style: str) -> FitContext:
        if style not in self._ctx:
            # Before the first prep of this style: a context from the plan alone.
            return FitContext(task=self.task, n_classes=self.n_classes, n_rows=len(self.y),
                              n_features=len(self.plan.used),
                              n_ordinal=self.plan.n_ordinal if style == "tree" else 0,
                              sparse=self.plan.has_text, has_text=self.plan.has_text,
                              seed=self.seed, n_jobs=self.n_jobs,
                              class_weight=self.class_weight)
        return self._ctx[style]

    # ---- cost model ----------------------------------------------------------------------------
    def estimate_seconds(self, family: ModelFamily) -> float:
        """Expected seconds for one trial of ``family`` (prep included when not cached)."""
        done = [r for r in self.records if r.family == family.name and r.fold_seconds]
        n_folds = self.splits.n_folds
        if done:
            per_fold = float(np.median([np.mean(r.fold_seconds) for r in done[-3:]]))
        else:
            # One "unit" = a default LightGBM fold. Measured on LightGBM when it has run;
            # otherwise the most pessimistic of the other families' measurements (tiny
            # linear folds would make every expensive family look affordable).
            measured = {r.family: np.mean(r.fold_seconds) / self._family(r.family).cost(
                self.ctx(r.style)) for r in self.records if r.fold_seconds}
            if "lightgbm" in measured:
                unit = float(measured["lightgbm"])
            elif measured:
                unit = float(max(measured.values()))
            else:
                unit = 1e-6 * len(self.y) * max(1, self.X.shape[1]) ** 0.5
            per_fold = unit * family.cost(self.ctx(family.prep_style))
        prep = 0.0 if family.prep_style in self._folds else 1.5 * len(self.y) * 2e-5 * n_folds
        return per_fold * math.ceil(n_folds / self.fold_workers) + prep

    @property
    def refits(self) -> bool:
        """k-fold models are refit on all rows; holdout models are kept as they are: on the
        large tables that get a holdout, 80% of the rows learn nearly as well as all of
        them, and the time a refit would take goes to the search instead."""
        return self.splits.kind != "holdout"

    def refit_grow(self) -> float:
        """How much longer a fit on all rows takes than one on a training fold."""
        if self.splits.kind == "holdout":
            return 1.25
        return 1.0 + 1.0 / max(1, self.splits.n_folds - 1)

    def refit_reserve(self) -> float:
        """Seconds to keep for refitting the likely ensemble members on all rows.

        The best three trials stand in for the members; their fits are packed into parallel
        lanes as ``_refit`` runs them, after the preprocessing of their styles.
        """
        safety = max(1.0, _SAFETY * (self.clock.deadline - self.clock.start))
        if not self.refits:
            return safety
        done = sorted((r for r in self.records if r.status == "complete"), key=lambda r: r.loss)
        grow = self.refit_grow()
        lanes = [0.0] * self.fold_workers
        styles: set[str] = set()
        for r in done[:3]:
            lanes[int(np.argmin(lanes))] += float(np.mean(r.fold_seconds)) * grow
            styles.add(r.style)
        prep = sum(self._prep_seconds.get(st, 0.0) * grow for st in styles)
        return prep + max(lanes) + safety

    # ---- trials --------------------------------------------------------------------------------
    @property
    def fold_workers(self) -> int:
        """Folds fitted at once. Each gets one thread: on a busy 2-core machine, one
        multi-threaded fit at a time loses most of its time to OpenMP threads waiting on
        each other, while parallel single-threaded folds keep both cores busy."""
        return max(1, min(self.n_jobs, self.splits.n_folds))

    def _fit_fold(self, family: ModelFamily, params: dict[str, Any], ctx: FitContext,
                  j: int, target_transform: str | None, deadline: float
                  ) -> tuple[np.ndarray, FitInfo, Any]:
        (tr, _va), (Xtr, Xva) = self.splits.folds[j], self._folds[family.prep_style][j]
        f0 = time.monotonic()
        ytr, yva = self.y[tr], self.y[_va]
        if target_transform == "log":
            ytr, yva = np.log1p(ytr), np.log1p(yva)
        est = family.build(dict(params), ctx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = family.fit(est, Xtr, ytr, ctx, X_val=Xva, y_val=yva, deadline=deadline)
            pred = self._predict(est, Xva, target_transform)
        if self.task is Task.REGRESSION:
            pred = np.clip(pred, self.y[tr].min(), self.y[tr].max())
        info.seconds = time.monotonic() - f0
        return pred, info, est

    def run_trial(self, number: int, family: ModelFamily, params: dict[str, Any],
                  target_transform: str | None, trial: Any) -> TrialRecord:
        from concurrent.futures import Future, ThreadPoolExecutor

        rec = TrialRecord(number, family.name, params, family.prep_style, target_transform)
        self.records.append(rec)
        t0 = time.monotonic()
        try:
            self.folds(family.prep_style)
            ctx = self.ctx(family.prep_style)
            if not family.supports(ctx):
                rec.status = "skipped"
                return rec
            workers = self.fold_workers
            if workers > 1:
                ctx = FitContext(**{**ctx.__dict__, "n_jobs": max(1, self.n_jobs // workers)})
            # No single trial may take more than MAX_TRIAL_SHARE of the budget: boosted fits
            # stop there with the rounds they have, so one slow family cannot starve the rest.
            budget = self.clock.deadline - self.clock.start
            trial_deadline = min(self.clock.deadline - self.refit_reserve(),
                                 time.monotonic() + MAX_TRIAL_SHARE * budget)
            oof = (np.zeros((len(self.y), self.n_classes)) if self.task is not Task.REGRESSION
                   else np.zeros(len(self.y)))
            n_folds = self.splits.n_folds
            with ThreadPoolExecutor(max_workers=workers) as pool:
                pending: dict[int, Future[tuple[np.ndarray, FitInfo, Any]]] = {}
                submitted = 0
                rec.status = "complete"
                for j in range(n_folds):
                    while submitted < n_folds and len(pending) < workers:
                        pending[submitted] = pool.submit(self._fit_fold, family, params, ctx,
                                                         submitted, target_transform,
                                                         trial_deadline)
                        submitted += 1
                    # Folds are read in order, so pruning decisions do not depend on timing.
                    pred, info, est = pending.pop(j).result()
                    if not self.refits:
                        rec.estimator = est
                    va = self.splits.folds[j][1]
                    rec.infos.append(info)
                    rec.fold_seconds.append(info.seconds)
                    oof[va] = pred
                    rec.fold_losses.append(self.metric.loss(self.y[va], pred))
                    if j < n_folds - 1 and self._first_trial_too_slow(rec, j):
                        # Without a finished trial there is no model: keep the folds done.
                        rec.status = "partial"
                        rec.oof, rec.covered = oof, self._covered(j)
                        rec.loss = self.metric.loss(self.y[rec.covered], oof[rec.covered])
                    elif time.monotonic() > trial_deadline and j < n_folds - 1:
                        rec.status = "timeout"
                    elif trial is not None and n_folds > 1:
                        trial.report(float(np.mean(rec.fold_losses)), j)
                        if trial.should_prune():
                            rec.status = "pruned"
                    if rec.status != "complete":
                        for future in pending.values():
                            future.cancel()
                        break
            if rec.status == "complete":
                rec.oof = oof
                rec.loss = self.metric.loss(self.y[self.mask], oof[self.mask])
        except MlwrightError:
            raise
        except Exception as exc:  # a family failing on odd data must not end the search
            rec.status = "failed"
            rec.error = f"{type(exc).__name__}: {exc}"
            log.warning("trial %d (%s) failed: %s", number, family.name, rec.error)
        finally:
            rec.seconds = time.monotonic() - t0
            rec.finished_at = self.clock.elapsed()
        if rec.status == "complete":
            best = min(r.loss for r in self.records if r.status == "complete")
            self.history.append((rec.finished_at, best))
        return rec

    def _family(self, name: str) -> ModelFamily:
        return next(f for f in self.families if f.name == name)

    def _covered(self, last_fold: int) -> np.ndarray:
        mask = np.zeros(len(self.y), dtype=bool)
        for _, va in self.splits.folds[: last_fold + 1]:
            mask[va] = True
        return mask

    def _first_trial_too_slow(self, rec: TrialRecord, j: int) -> bool:
        """While no trial has finished: would finishing this one leave no time to refit?"""
        if any(r.status == "complete" for r in self.records):
            return False
        per_fold = float(np.mean(rec.fold_seconds))
        left_folds = math.ceil((self.splits.n_folds - 1 - j) / self.fold_workers)
        refit = per_fold * 1.3 + self._prep_seconds.get(rec.style, 0.0) * 1.3
        return time.monotonic() + left_folds * per_fold + refit > self.clock.deadline

    def _predict(self, est: Any, X: Any, target_transform: str | None) -> np.ndarray:
        if self.task is Task.REGRESSION:
            out = predict_values(est, X)
            return np.expm1(out) if target_transform == "log" else out
        return full_proba(est, X, self.n_classes)


def _portfolio(search: _Search) -> list[tuple[ModelFamily, dict[str, Any], str | None]]:
    """Default configurations in the order they are tried."""
    items: list[tuple[int, int, ModelFamily, dict[str, Any], str | None]] = []
    for family in search.families:
        ctx = search.ctx(family.prep_style)
        if not family.supports(ctx):
            continue
        for rank, config in enumerate(family.default_configs(ctx)):
            transforms: list[str | None] = [None]
            if search.log_target and family.name in ("lightgbm", "linear", "catboost"):
                transforms = ["log", None]
            for tf in transforms:
                # Interleave: every family's first config before anyone's second.
                items.append((rank, family.priority, family, config, tf))
    items.sort(key=lambda it: (it[0], it[1]))
    return [(f, c, tf) for _, _, f, c, tf in items]


def run_search(X: pd.DataFrame, y: pd.Series, *, task: Task | str | None = None,
               metric: str | None = None, time_budget: float = 60.0,
               n_trials: int | None = None, search: str = "bayes",
               families: list[str] | None = None, cv: int | str = "auto",
               groups: pd.Series | None = None, time_column: pd.Series | None = None,
               seed: int = 0, n_jobs: int = -1, class_weight: str | None = None,
               threshold: str | float | None = None, kinds: dict[str, ColumnKind] | None = None,
               on_trial: Callable[[TrialRecord, Any], None] | None = None,
               started_at: float | None = None) -> SearchResult:
    """Search, ensemble and refit within ``time_budget`` seconds. See module docstring.

    ``started_at`` (a ``time.monotonic()`` value) counts earlier work, such as loading the
    data and learning the contract, against the same budget.
    """
    import optuna

    clock = _Clock(time_budget, started_at)
    if search not in ("bayes", "random", "grid"):
        raise ConfigError(f"search must be 'bayes', 'random' or 'grid', got {search!r}.")
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
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler: optuna.samplers.BaseSampler = (
            optuna.samplers.RandomSampler(seed=seed) if search != "bayes" else
            optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                       n_startup_trials=8)
        )
        study = optuna.create_study(
            direction="minimize", sampler=sampler,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1))
    with _one_blas_thread():
        return _finish(s, study, zoo, time_budget=time_budget, threshold=threshold,
                       classes=classes, columns=list(X.columns))


def _one_blas_thread() -> Any:
    """BLAS with one thread while searching and refitting. The solvers' BLAS calls are
    vector operations too small to share: on 2 cores, two OpenBLAS threads made one L-BFGS
    logistic regression on TF-IDF 2x slower on a lightly loaded machine (8 s, not 4 s), up
    to 9x slower on a busy one, and parallel folds already keep the cores busy. Boosting
    libraries are not affected (they set their own OpenMP threads)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _finish(s: _Search, study: Any, zoo: list[ModelFamily], *, time_budget: float,
            threshold: str | float | None, classes: list[Any] | None,
            columns: list[str]) -> SearchResult:
    """Search, ensemble selection and refit (see the module docstring)."""
    clock, task, metric_obj, y_enc, splits = s.clock, s.task, s.metric, s.y, s.splits
    _search_loop(s, study, zoo)
    if not any(r.status in ("complete", "partial") or r.error for r in s.records):
        # A budget too short for even one fold (or a machine too busy): a model slightly
        # late beats an error, so run one default trial past the budget.
        log.warning("%.3g s was too short for one trial; running one default trial past "
                    "the budget", time_budget)
        clock.deadline = time.monotonic() + max(30.0, 2 * time_budget)
        s.n_trials = len(s.records) + 1
        _search_loop(s, study, zoo, first_number=len(s.records))

    timings = {"search": clock.elapsed()}
    done = [r for r in s.records if r.status == "complete"]
    if not done:
        # A budget too short for one full trial: the best trial cut short, on its folds.
        partial = sorted((r for r in s.records if r.status == "partial"), key=lambda r: r.loss)
        if partial:
            done = partial[:1]
            s.mask = partial[0].covered
            splits = Splits([f for f in splits.folds if partial[0].covered[f[1]].all()],
                            splits.kind)
    if not done:
        failed = [r.error for r in s.records if r.error]
        raise MlwrightError(
            f"No model could be trained within the {time_budget:g} s budget"
            + (f" (errors: {'; '.join(failed[:3])})" if failed else "")
            + ". Give a larger --budget or read a --sample of the data."
        )
    # ---- ensemble selection on out-of-fold predictions ----------------------------------------
    t0 = time.monotonic()
    candidates = sorted(done, key=lambda r: r.loss)[:25]
    weights_by_pos = greedy_selection([r.oof for r in candidates], y_enc, metric_obj,
                                      mask=s.mask)
    weights = {candidates[i].number: w for i, w in weights_by_pos.items()}
    members_rec = [candidates[i] for i in weights_by_pos]
    oof = sum(candidates[i].oof * w for i, w in weights_by_pos.items())
    timings["ensemble"] = time.monotonic() - t0
    fold_losses = [metric_obj.loss(y_enc[va], oof[va]) for _, va in splits.folds]
    cv_loss = metric_obj.loss(y_enc[s.mask], oof[s.mask])

    # ---- refit on all rows (k-fold), or keep the holdout models ---------------------------------
    t0 = time.monotonic()
    if s.refits:
        model, weights = _refit(s, members_rec, weights, classes, columns, clock)
    else:
        model = _holdout_ensemble(s, members_rec, weights, classes, columns)
    for r in s.records:
        r.estimator = None  # only the ensemble keeps models
    timings["refit"] = time.monotonic() - t0
    if threshold is not None and task is Task.BINARY:
        model.threshold = _choose_threshold(y_enc[s.mask], oof[s.mask], threshold)
    timings["total"] = clock.elapsed()
    return SearchResult(model=model, task=task, metric=metric_obj, trials=s.records,
                        weights=weights, oof=oof, oof_mask=s.mask, y_encoded=y_enc,
                        classes=classes, cv_loss=cv_loss, fold_losses=fold_losses,
                        splits_kind=splits.kind, timings=timings, history=s.history,
                        kinds=s.kinds)


def _search_loop(s: _Search, study: Any, zoo: list[ModelFamily], *,
                 first_number: int = 0) -> None:
    import optuna

    portfolio = _portfolio(s)
    if s.search == "grid":
        portfolio += [(f, c, tf) for f in zoo for c in f.grid_configs(s.ctx(f.prep_style))
                      for tf in (["log", None] if s.log_target else [None])]
    names = [f.name for f in zoo]
    by_name = {f.name: f for f in zoo}
    number = first_number
    while s.n_trials is None or number < s.n_trials:
        left = s.clock.left() - s.refit_reserve()
        if left <= 0:
            break
        if portfolio:
            family, config, tf = portfolio.pop(0)
            if s.estimate_seconds(family) > left and s.n_trials is None:
                log.info("skipping %s default: expected %.1fs, %.1fs left", family.name,
                         s.estimate_seconds(family), left)
                continue
            fixed = {"family": family.name, **config}
            if s.log_target:
                fixed["target_transform"] = tf or "none"
            study.enqueue_trial(fixed, skip_if_exists=False)
        elif s.search == "grid":
            break
        trial = study.ask()
        fam_name = trial.suggest_categorical("family", names)
        family = by_name[fam_name]
        ctx = s.ctx(family.prep_style)
        tf = None
        if s.log_target:
            tf = trial.suggest_categorical("target_transform", ["log", "none"])
            tf = None if tf == "none" else tf
        if not family.supports(ctx) or (s.n_trials is None and
                                        s.estimate_seconds(family) > left):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            # TPE learns to avoid it; stop when nothing affordable is left.
            if all(s.estimate_seconds(f) > left or not f.supports(s.ctx(f.prep_style))
                   for f in zoo):
                break
            continue
        params = family.suggest(trial, ctx)
        rec = s.run_trial(number, family, params, tf, trial)
        number += 1
        if rec.status == "complete":
            study.tell(trial, rec.loss)
        elif rec.status in ("pruned", "timeout", "skipped"):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if log.isEnabledFor(logging.INFO):
            log.info("trial %d %s: %s loss=%.5f (%.1fs)", rec.number, rec.family, rec.status,
                     rec.loss, rec.seconds)
        if s.on_trial is not None:
            s.on_trial(rec, s)


def _refit(s: _Search, members: list[TrialRecord], weights: dict[int, float],
           classes: list[Any] | None, feature_names: list[str],
           clock: _Clock) -> tuple[Ensemble, dict[int, float]]:
    """Fit the chosen members on all rows, in parallel single-threaded fits (see
    ``_Search.fold_workers``). Members that cannot finish before the deadline are dropped,
    lightest weight first; boosted members stop at the deadline with the rounds they have."""
    from concurrent.futures import ThreadPoolExecutor

    by_name = {f.name: f for f in s.families}
    grow = s.refit_grow()
    # The same threads per fit as the search measured with, so its reserve holds.
    workers = s.fold_workers
    threads = max(1, s.n_jobs // workers)
    order = sorted(members, key=lambda r: -weights[r.number])
    kept_recs: list[TrialRecord] = []
    lanes = [0.0] * workers  # expected busy seconds per worker thread
    for rec in order:
        cost = float(np.mean(rec.fold_seconds)) * grow
        lane = int(np.argmin(lanes))
        if kept_recs and lanes[lane] + cost > clock.left():
            log.warning("no time left to refit %s (trial %d); dropped from the ensemble",
                        rec.family, rec.number)
            continue
        lanes[lane] += cost
        kept_recs.append(rec)
    preps: dict[str, tuple[Any, Any]] = {}
    for style in dict.fromkeys(r.style for r in kept_recs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            prep = s._prep(style)
            preps[style] = (prep, prep.fit_transform(s.X, s.y))

    def fit_member(rec: TrialRecord) -> dict[str, Any]:
        family = by_name[rec.family]
        Xt = preps[rec.style][1]
        ctx = FitContext(**{**s.ctx(rec.style).__dict__, "n_features": Xt.shape[1],
                            "n_jobs": threads})
        est = family.build(family.refit_params(dict(rec.params), rec.infos, ctx), ctx)
        y = np.log1p(s.y) if rec.target_transform == "log" else s.y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Boosted members stop at the deadline with the rounds they have.
            family.fit(est, Xt, y, ctx, deadline=clock.deadline)
        member = {"family": rec.family, "trial": rec.number, "style": rec.style,
                  "estimator": est, "weight": weights[rec.number],
                  "target_transform": rec.target_transform}
        if s.task is Task.REGRESSION:
            # Linear members extrapolate; on the log scale a wild guess becomes a huge one.
            member["clip"] = (float(s.y.min()), float(s.y.max()))
        return member

    with ThreadPoolExecutor(max_workers=workers) as pool:
        fitted = list(pool.map(fit_member, kept_recs))
    for member in fitted:
        _single_threaded(member["estimator"])
    total = sum(m["weight"] for m in fitted)
    for m in fitted:
        m["weight"] = m["weight"] / total
    kept = {m["trial"]: m["weight"] for m in fitted}
    model = Ensemble({k: v[0] for k, v in preps.items()}, fitted, s.task.value, classes,
                     feature_names)
    return model, kept


def _holdout_ensemble(s: _Search, members: list[TrialRecord], weights: dict[int, float],
                      classes: list[Any] | None, feature_names: list[str]) -> Ensemble:
    fitted = []
    for rec in members:
        member = {"family": rec.family, "trial": rec.number, "style": rec.style,
                  "estimator": rec.estimator, "weight": weights[rec.number],
                  "target_transform": rec.target_transform}
        if s.task is Task.REGRESSION:
            tr = s.splits.folds[0][0]
            member["clip"] = (float(s.y[tr].min()), float(s.y[tr].max()))
        _single_threaded(rec.estimator)
        fitted.append(member)
    preps = {rec.style: s._fold_preps[rec.style][0] for rec in members}
    return Ensemble(preps, fitted, s.task.value, classes, feature_names)


def _single_threaded(estimator: Any) -> None:
    """Predict with one thread: for the small batches a served model sees, starting threads
    costs more than it saves (a forest with n_jobs=2 spends milliseconds per call on it)."""
    params = estimator.get_params(deep=False)
    for name in ("n_jobs", "thread_count"):
        if name in params:
            estimator.set_params(**{name: 1})


def _choose_threshold(y: np.ndarray, proba: np.ndarray, how: str | float) -> float:
    if isinstance(how, int | float):
        if not 0.0 < float(how) < 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {how}.")
        return float(how)
    from sklearn.metrics import balanced_accuracy_score, f1_score

    scorer = {"f1": f1_score, "balanced_accuracy": balanced_accuracy_score}.get(str(how))
    if scorer is None:
        raise ConfigError(f"threshold must be a number, 'f1' or 'balanced_accuracy'; got {how!r}.")
    grid = np.unique(np.quantile(proba[:, 1], np.linspace(0.01, 0.99, 99)))
    scores = [scorer(y, (proba[:, 1] >= t).astype(int)) for t in grid]
    return float(grid[int(np.argmax(scores))])
