"""One search's working state: preprocessing cached per style and fold, the trials' records
and running one trial over the folds in parallel. The clock and the cost model that keeps
every trial and the final refit inside the budget are :mod:`mlwright.search.budget`'s."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlwright._logging import get_logger
from mlwright.data.kinds import ColumnKind, Task
from mlwright.exceptions import MlwrightError
from mlwright.prep import build_preprocessor, plan_columns
from mlwright.scoring import Metric
from mlwright.search._base import FitContext, FitInfo, ModelFamily
from mlwright.search.budget import (  # noqa: F401 - where callers read them
    MAX_TRIAL_SHARE,
    RUNG_GROWTH,
    RUNG_ROWS,
    Budgeting,
    _Clock,
)
from mlwright.search.contention import others_busy
from mlwright.search.duplicate_rows import RowGroups, group_rows
from mlwright.search.ensemble import full_proba, predict_values
from mlwright.search.memory import purge_promptly, release_freed_memory
from mlwright.search.records import TrialRecord
from mlwright.search.splits import Splits

log = get_logger(__name__)

#: Complete trials (best first) whose fold models are kept: the ensemble's members are
#: nearly always among them, and a member whose refit cannot finish ships as its fold models.
KEEP_FOLD_MODELS = 10
#: Complete trials (best first) the ensemble picks its members from. A trial that falls out
#: of them can never come back (later trials only push it further down), so its
#: out-of-fold predictions and model are let go at once.
ENSEMBLE_CANDIDATES = 25
#: Out-of-fold prediction cells (validated rows x classes) the candidates may hold
#: together: the greedy selection reads every one at each of its rounds. On a table as
#: large as military (212 k validated rows x 4 classes) they are 7; 25 candidates there
#: took 7.6 s to select from after a 60 s budget.
CANDIDATE_CELLS = 6_000_000
#: Candidates however large the table: the ensemble still has a choice.
MIN_CANDIDATES = 5


@dataclass(frozen=True)
class TrialPlan:
    """What the search state decides about one trial before its folds run: its deadline
    (``time.monotonic()`` of the process that runs it; None: run to the end), whether it
    is its family's first trial (never a timeout), whether another trial has completed
    (else a trial cut short keeps its folds as a partial result), and whether it is the
    last-chance trial of a budget used up before any trial."""

    deadline: float | None
    first: bool
    others_complete: bool
    last_chance: bool


def _every_row(X: Any, groups: RowGroups | None) -> Any:
    return X if groups is None else X[groups.of_row]


def _encode_target(y: pd.Series, task: Task) -> tuple[np.ndarray, list[Any] | None]:
    if task is Task.REGRESSION:
        return y.to_numpy(dtype=float), None
    classes = sorted(pd.unique(y.dropna()), key=lambda v: (str(type(v)), v))
    lookup = {c: i for i, c in enumerate(classes)}
    return y.map(lookup).to_numpy(dtype=np.int64), list(classes)


def _log_target_helps(y: np.ndarray) -> bool:
    # Worth trying on positive, right-skewed targets (prices, counts).
    return bool(np.all(y > 0) and pd.Series(y).skew() > 1.0)


class _Search(Budgeting):
    """One run of the search. Holds the caches that make trials cheap."""

    def __init__(self, X: pd.DataFrame, y: np.ndarray, *, task: Task, metric: Metric,
                 kinds: dict[str, ColumnKind], splits: Splits, clock: _Clock,
                 families: list[ModelFamily], n_trials: int | None, search: str, seed: int,
                 n_jobs: int, class_weight: str | dict[Any, float] | None, n_classes: int,
                 on_trial: Callable[[TrialRecord, _Search], None] | None) -> None:
        self.X, self.y, self.task, self.metric = X, y, task, metric
        self.splits, self.clock, self.seed, self.n_jobs = splits, clock, seed, n_jobs
        self.class_weight, self.n_classes, self.on_trial = class_weight, n_classes, on_trial
        self.n_trials, self.search = n_trials, search
        # With a number of trials the clock decides nothing: every trial and the refit run
        # to the end, so that --seed and --trials reproduce a run at any budget.
        self.reproducible = n_trials is not None
        others_busy()  # starts the process's measure, if nothing has
        release_freed_memory()  # the first call sets where growth is counted from
        purge_promptly(len(X))  # before CatBoost's first import
        # Set when the budget ran out before any trial: one default trial runs with the
        # run's (past) deadline, each fold stopping at its first round or chunk.
        self.last_chance = False
        self.kinds = kinds
        # Threads of the process that runs each trial when it is not this one (a Dask
        # worker's, see mlwright.cluster): its folds run that many at a time.
        self.trial_threads: int | None = None
        self.plan = plan_columns(kinds)
        self.families = families
        self.records: list[TrialRecord] = []
        self.history: list[tuple[float, float]] = []
        self._folds: dict[str, list[tuple[Any, Any]]] = {}
        self._fold_preps: dict[str, list[Any]] = {}
        # Per style and fold: the (training, validation) rows' duplicate groups, or None.
        self._groups: dict[str, list[tuple[RowGroups | None, RowGroups | None]]] = {}
        self._fold_groups: dict[int, tuple[RowGroups | None, RowGroups | None]] = {}
        self._validated_groups: tuple[np.ndarray, np.ndarray] | None = None
        self._validated_groups_found = False  # at the first complete trial
        self._prep_seconds: dict[str, float] = {}
        self._ctx: dict[str, FitContext] = {}
        self.log_target = task is Task.REGRESSION and _log_target_helps(y)
        self.mask = splits.covered(len(y))
        # Trials keep out-of-fold predictions for the validated rows only, in row order
        # (``validated``; ``_at[j]``: where fold j's validation rows are among them): with a
        # holdout that is a fifth of the rows (military, 4 classes: 7 MB a trial, not 34).
        self.validated = np.flatnonzero(self.mask)
        self.y_validated = y[self.validated]
        self._at = [self.validated_at(va) for _, va in splits.folds]
        # The table's duplicate (features, target) rows, found once before any fold is
        # prepared, so that a large table's folds are transformed once per distinct row.
        # None with "balanced" class weights: the estimators work them out from the rows
        # they get, and distinct rows would skew them.
        self.row_groups = (None if class_weight == "balanced"
                           else group_rows(X[self.plan.used], y))

    # ---- preprocessing, cached per style and fold -------------------------------------------
    def _prep(self, style: str) -> Any:
        return build_preprocessor(self.plan, style, task=self.task)

    def folds(self, style: str) -> list[tuple[Any, Any]]:
        """Each fold's (training, validation) design matrices of ``style``, every row."""
        self._prepare(style)
        return [(_every_row(Xtr, g_tr), _every_row(Xva, g_va))
                for (Xtr, Xva), (g_tr, g_va) in zip(self._folds[style], self._groups[style],
                                                    strict=True)]

    def _prepare(self, style: str) -> None:
        """Preprocess each fold for ``style`` once. A large table's duplicate rows are
        prepared and kept once each (see mlwright.search.duplicate_rows), with their
        groups."""
        if style in self._folds:
            return
        t0 = time.monotonic()
        out, groups, preps = [], [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for j, (tr, va) in enumerate(self.splits.folds):
                prep = self._prep(style)
                g_tr, g_va = self.fold_groups(j)
                if prep.cross_fitted:
                    # Cross-fitted features differ between a training row and its
                    # duplicate: those training rows are prepared (and learned) every one.
                    g_tr = None
                if g_tr is None:
                    Xtr = prep.fit_transform(self.X.iloc[tr], self.y[tr])
                else:  # statistics from every row, features for each distinct row once
                    prep.fit(self.X.iloc[tr], self.y[tr])
                    Xtr = prep.transform(self.X.iloc[tr[g_tr.first]])
                Xva = prep.transform(self.X.iloc[va if g_va is None else va[g_va.first]])
                out.append((Xtr, Xva))
                groups.append((g_tr, g_va))
                preps.append(prep)
        self._fold_preps[style] = preps
        self._folds[style] = out
        self._groups[style] = groups
        self._prep_seconds[style] = (time.monotonic() - t0) / len(self.splits.folds)
        Xtr = out[0][0]
        self._ctx[style] = FitContext(
            task=self.task, n_classes=self.n_classes, n_rows=len(self.y),
            n_features=Xtr.shape[1], n_ordinal=self.plan.n_ordinal if style == "tree" else 0,
            sparse=sp.issparse(Xtr), has_text=self.plan.has_text, seed=self.seed,
            n_jobs=self.n_jobs, class_weight=self.class_weight)

    def fold_groups(self, j: int) -> tuple[RowGroups | None, RowGroups | None]:
        """Fold ``j``'s (training, validation) row groups, found once and shared by every
        style (military's hold 8 bytes a row: 10 MB a style)."""
        if j not in self._fold_groups:
            tr, va = self.splits.folds[j]
            table = self.row_groups
            self._fold_groups[j] = ((None, None) if table is None
                                    else (table.within(tr), table.within(va)))
        return self._fold_groups[j]

    def validated_groups(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(each validated row's group, each group's first validated row) when every fold
        validates its duplicate rows once each (their predictions are equal), else None."""
        if not self._validated_groups_found:
            self._validated_groups_found = True
            groups = [self.fold_groups(j)[1] for j in range(len(self.splits.folds))]
            if all(g is not None for g in groups):
                of_row = np.empty(len(self.validated), dtype=np.intp)
                firsts, offset = [], 0
                for at, g in zip(self._at, groups, strict=True):
                    assert g is not None
                    of_row[at] = g.of_row + offset
                    firsts.append(at[g.first])
                    offset += g.n_groups
                self._validated_groups = (of_row, np.concatenate(firsts))
        return self._validated_groups

    def validated_at(self, rows: np.ndarray) -> np.ndarray:
        """Where validated ``rows`` are in a trial's out-of-fold predictions."""
        return np.searchsorted(self.validated, rows)

    def grouped(self, style: str) -> bool:
        """Whether ``style``'s folds learn from grouped duplicate rows (so does the refit)."""
        return any(g_tr is not None for g_tr, _ in self._groups.get(style, []))

    def ctx(self, style: str) -> FitContext:
        if style not in self._ctx:
            # Before the first prep of this style: a context from the plan alone. Only the
            # linear style keeps text as sparse TF-IDF; the tree style turns it into a few
            # dense scores (prep/text.py), so text does not rule out the tree families.
            return FitContext(task=self.task, n_classes=self.n_classes, n_rows=len(self.y),
                              n_features=len(self.plan.used),
                              n_ordinal=self.plan.n_ordinal if style == "tree" else 0,
                              sparse=self.plan.has_text and style != "tree",
                              has_text=self.plan.has_text,
                              seed=self.seed, n_jobs=self.n_jobs,
                              class_weight=self.class_weight)
        return self._ctx[style]

    @property
    def _oof_cells(self) -> int:
        """Out-of-fold prediction cells of one trial (validated rows x classes)."""
        return len(self.validated) * max(1, self.n_classes)

    @property
    def ensemble_candidates(self) -> int:
        """How many of the best complete trials the ensemble picks its members from."""
        return max(MIN_CANDIDATES, min(ENSEMBLE_CANDIDATES, CANDIDATE_CELLS // self._oof_cells))

    def candidate_pool(self, complete: list[TrialRecord]) -> list[TrialRecord]:
        """The trials of ``complete`` (best first) the ensemble picks its members from: the
        ``ensemble_candidates`` best, and each other family's best trial while the table
        leaves room for them (its predictions under ``CANDIDATE_CELLS`` with them all).

        Without the families' bests a long search fills the pool with near-equal trials of
        one family, and the greedy selection fits their differences on the validated rows:
        telco_churn at 300 s shipped four LightGBM trials (CV 0.8513, test 0.8474) where
        60 s, with a linear and an MLP member beside them, tested higher. A trial that leaves
        the pool never comes back (ranks only fall; a family's best is only replaced by a
        better one), so its predictions and model can be let go at once.
        """
        n = self.ensemble_candidates
        pool = complete[:n]
        if self._oof_cells * (n + len(self.families)) > CANDIDATE_CELLS:
            return pool
        seen = {r.family for r in pool}
        for r in complete[n:]:
            if r.family not in seen:
                seen.add(r.family)
                pool.append(r)
        return pool

    def _keep_best_fold_models(self) -> None:
        kept = sorted((r for r in self.records if r.fold_models is not None),
                      key=lambda r: r.loss)
        for r in kept[KEEP_FOLD_MODELS:]:
            r.fold_models = None

    # ---- trials --------------------------------------------------------------------------------
    @property
    def fold_workers(self) -> int:
        """Folds fitted at once. Each gets one thread: on a busy 2-core machine, one
        multi-threaded fit at a time loses most of its time to OpenMP threads waiting on
        each other, while parallel single-threaded folds keep both cores busy."""
        return max(1, min(self.n_jobs, self.splits.n_folds))

    def _fit_fold(self, family: ModelFamily, params: dict[str, Any], ctx: FitContext,
                  j: int, target_transform: str | None, deadline: float | None,
                  span: float, rows: float = 1.0) -> tuple[np.ndarray, FitInfo, Any]:
        (tr, _va), (Xtr, Xva) = self.splits.folds[j], self._folds[family.prep_style][j]
        f0 = time.monotonic()
        if deadline is not None:
            # Each wave of parallel folds gets its part of the trial's time: the last folds
            # must not start after the first ones used it all.
            deadline = min(deadline, f0 + span)
        ytr, yva = self.y[tr], self.y[_va]
        if target_transform == "log":
            ytr, yva = np.log1p(ytr), np.log1p(yva)
        # A large table's duplicate rows are kept, learned, validated and predicted once
        # each; a family that takes no weights gets every row back.
        g_tr, g_va = self._groups[family.prep_style][j]
        weights: dict[str, Any] = {}
        X_pred = Xva
        if rows < 1.0:  # a rung: a sample of the training rows, scored on the whole fold
            pick = self.rung_sample(self.y[tr], rows, j)
            Xtr, ytr = Xtr[pick if g_tr is None else g_tr.of_row[pick]], ytr[pick]
        elif g_tr is not None and family.weighted:
            ytr = ytr[g_tr.first]
            weights["sample_weight"] = g_tr.weights()
        elif g_tr is not None:
            Xtr = Xtr[g_tr.of_row]
        if g_va is not None and family.weighted:
            yva = yva[g_va.first]
            weights["val_weight"] = g_va.weights()
        elif g_va is not None:
            Xva = Xva[g_va.of_row]
        est = family.build(dict(params), ctx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = family.fit(est, Xtr, ytr, ctx, X_val=Xva, y_val=yva, deadline=deadline,
                              **weights)
            pred = self._predict(est, X_pred, target_transform)
        if g_va is not None:
            pred = pred[g_va.of_row]
        if self.task is Task.REGRESSION:
            pred = np.clip(pred, self.y[tr].min(), self.y[tr].max())
        info.seconds = time.monotonic() - f0
        return pred, info, est

    def plan_trial(self, rec: TrialRecord, family: ModelFamily) -> TrialPlan:
        """What the search state decides about a trial before it runs (see TrialPlan)."""
        opening = all(r is rec or r.status == "skipped" for r in self.records)
        deadline = self.trial_deadline(family, opening=opening)
        rec.deadline = None if deadline is None else deadline - self.clock.start
        # A family's first trial is no timeout before the run's deadline: folds that start
        # after the trial's stop at their first round, so every family gets a model it can
        # be judged by.
        first = (not any(r.family == family.name for r in self.records if r is not rec)
                 and time.monotonic() < self.clock.deadline)
        return TrialPlan(deadline=deadline, first=first,
                         others_complete=self._has_complete(rec),
                         last_chance=self.last_chance)

    def run_trial(self, number: int, family: ModelFamily, params: dict[str, Any],
                  target_transform: str | None, trial: Any, rows: float = 1.0) -> TrialRecord:
        rec = TrialRecord(number, family.name, params, family.prep_style, target_transform,
                          rows=rows)
        self.records.append(rec)
        self.run_planned(rec, family, lambda: self.plan_trial(rec, family), trial)
        rec.finished_at = self.clock.elapsed()
        self.finish_trial(rec)
        return rec

    def finish_trial(self, rec: TrialRecord) -> None:
        """Bookkeeping once ``rec`` ran: the fold models kept, the best-so-far history."""
        if rec.fold_models is not None:
            self._keep_best_fold_models()
        if rec.status == "complete":
            complete = sorted((r for r in self.records if r.status == "complete"),
                              key=lambda r: r.loss)
            # The trial just finished keeps its model for on_trial hooks until the next.
            pool = {id(r) for r in self.candidate_pool(complete)}
            for r in complete:
                if id(r) not in pool and r is not rec:
                    r.oof = r.estimator = r.fold_models = None
            self.history.append((rec.finished_at, complete[0].loss))
        release_freed_memory()

    def run_planned(self, rec: TrialRecord, family: ModelFamily,
                    plan: Callable[[], TrialPlan], trial: Any) -> None:
        """Run ``rec``'s folds, in parallel, into ``rec``. ``plan`` is called once the
        folds' preprocessing is ready (a search on a Dask worker gets its plan from the
        client's search state). ``trial`` reports and prunes (Optuna's Trial, or None)."""
        from concurrent.futures import Future, ThreadPoolExecutor

        t0 = time.monotonic()
        try:
            self._prepare(family.prep_style)
            ctx = self.ctx(family.prep_style)
            if not family.supports(ctx):
                rec.status = "skipped"
                return
            workers = self.fold_workers
            # A reproducible run keeps its threads: LightGBM's sums depend on them.
            contended = not self.reproducible and others_busy()
            if workers > 1 or rec.rows < 1.0 or contended:
                # A rung's few hundred rows gain nothing from threads, and on a busy machine
                # two OpenMP threads wait on each other at every barrier (10 rounds of
                # HistGradientBoosting on 500 diamonds rows, load 7.5: 0.02-0.17 s with one
                # thread, 2.5-8.2 s with two; a late rung took 12.9 s past a 30 s budget).
                threads = (1 if rec.rows < 1.0 or contended
                           else max(1, self.n_jobs // workers))
                ctx = FitContext(**{**ctx.__dict__, "n_jobs": threads})
            # No single trial may take more than its share of the budget (trial_deadline):
            # boosted fits stop there with the rounds they have, so one slow family cannot
            # starve the rest.
            p = plan()
            trial_deadline = p.deadline
            n_val = len(self.validated)
            oof = (np.zeros((n_val, self.n_classes)) if self.task is not Task.REGRESSION
                   else np.zeros(n_val))
            n_folds = self.splits.n_folds
            span = (math.inf if trial_deadline is None else
                    (trial_deadline - time.monotonic()) / math.ceil(n_folds / workers))
            models: list[Any] = []
            timed = trial_deadline is not None and not p.last_chance and not p.first
            stop_at = math.inf if trial_deadline is None else trial_deadline
            with ThreadPoolExecutor(max_workers=workers) as pool:
                pending: dict[int, Future[tuple[np.ndarray, FitInfo, Any]]] = {}
                submitted = 0
                rec.status = "complete"
                for j in range(n_folds):
                    while submitted < n_folds and len(pending) < workers:
                        pending[submitted] = pool.submit(self._fit_fold, family, rec.params, ctx,
                                                         submitted, rec.target_transform,
                                                         trial_deadline, span, rec.rows)
                        submitted += 1
                    # Folds are read in order, so pruning decisions do not depend on timing.
                    pred, info, est = pending.pop(j).result()
                    if not self.refits:
                        rec.estimator = est
                    models.append(est)
                    va = self.splits.folds[j][1]
                    rec.infos.append(info)
                    rec.fold_seconds.append(info.seconds)
                    oof[self._at[j]] = pred
                    rec.fold_losses.append(self.metric.loss(self.y[va], pred))
                    if timed and submitted < n_folds and time.monotonic() > stop_at:
                        # Folds that never started: cut short. The first trial keeps its
                        # folds (a model at a short budget); a later one is a timeout.
                        if p.others_complete:
                            rec.status = "timeout"
                        else:
                            self._partial(rec, oof, j)
                    elif trial is not None and n_folds > 1 and rec.rows >= 1.0:
                        # A rung is never pruned: its folds learn from fewer rows than
                        # the trials it would be compared with, and its time is the
                        # measurement the next rung is planned on.
                        trial.report(float(np.mean(rec.fold_losses)), j)
                        if trial.should_prune():
                            rec.status = "pruned"
                    if rec.status != "complete":
                        for future in pending.values():
                            future.cancel()
                        break
            if rec.status == "complete":
                rec.loss = self.metric.loss(self.y_validated, oof)
                rec.keep_oof(oof, self.validated_groups())
            if self.refits and rec.status in ("complete", "partial"):
                rec.fold_models = models  # fold j's model first j+1 (a partial trial's)
        except MlwrightError:
            raise
        except Exception as exc:  # a family failing on odd data must not end the search
            rec.status = "failed"
            rec.error = f"{type(exc).__name__}: {exc}"
            log.warning("trial %d (%s) failed: %s", rec.number, family.name, rec.error)
        finally:
            rec.seconds = time.monotonic() - t0

    def _family(self, name: str) -> ModelFamily:
        return next(f for f in self.families if f.name == name)

    def _covered(self, last_fold: int) -> np.ndarray:
        mask = np.zeros(len(self.y), dtype=bool)
        for _, va in self.splits.folds[: last_fold + 1]:
            mask[va] = True
        return mask

    def _has_complete(self, rec: TrialRecord) -> bool:
        """Whether a trial other than ``rec`` (marked complete while it runs) finished."""
        return any(r.status == "complete" for r in self.records if r is not rec)

    def _partial(self, rec: TrialRecord, oof: np.ndarray, j: int) -> None:
        rec.status = "partial"
        rec.keep_oof(oof, self.validated_groups())
        rec.covered = self._covered(j)
        rec.loss = self.metric.loss(self.y[rec.covered], oof[rec.covered[self.validated]])

    def _predict(self, est: Any, X: Any, target_transform: str | None) -> np.ndarray:
        if self.task is Task.REGRESSION:
            out = predict_values(est, X)
            return np.expm1(out) if target_transform == "log" else out
        return full_proba(est, X, self.n_classes)
