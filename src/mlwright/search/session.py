"""One search's working state: the clock, preprocessing cached per style and fold, the cost
model that keeps every trial and the final refit inside the budget (trial deadlines, the
refit reserve), and running one trial over the folds in parallel."""

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
from mlwright.search.contention import others_busy
from mlwright.search.duplicate_rows import RowGroups, group_rows
from mlwright.search.ensemble import full_proba, predict_values
from mlwright.search.memory import purge_promptly, release_freed_memory
from mlwright.search.records import TrialRecord
from mlwright.search.splits import Splits

log = get_logger(__name__)

# Leave this share of the budget (at least 1 s) for ensembling and bookkeeping.
_SAFETY = 0.03
MAX_TRIAL_SHARE = 0.4
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
#: Training rows per fold of the first trial of a family that cannot stop at a deadline
#: (k-NN, MLP): its cost is unknown until measured, as a LightGBM unit says little about an
#: MLP (diamonds' 32k-row holdout fold: default MLP 18.6-19.6 CPU s, LightGBM 0.8 s, 23x
#: where its cost() says 4.7x; the 30 s run that tried it, and neither hist_gb nor k-NN,
#: ended 10 s late), so it is measured on a trial too small to overrun. Each next rung has
#: RUNG_GROWTH times the rows, run only when the time the last one measured, scaled to its
#: rows, fits the trial's share; from half the rows on, a rung is all of them.
RUNG_ROWS = 500
RUNG_GROWTH = 4


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


class _Clock:
    def __init__(self, budget: float, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.deadline = self.start + budget

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.deadline - time.monotonic()


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


class _Search:
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

    # ---- cost model ----------------------------------------------------------------------------
    def estimate_seconds(self, family: ModelFamily, rows: float = 1.0) -> float:
        """Expected seconds for one trial of ``family`` on ``rows`` of each fold's training
        rows (prep included when not cached). Rungs are scaled to all rows as if time grew
        with rows (k-NN's scan and an MLP's epochs do; fixed costs make it pessimistic)."""
        done = [r for r in self.records if r.family == family.name and r.fold_seconds]
        n_folds = self.splits.n_folds
        if done:
            per_fold = float(np.median([np.mean(r.fold_seconds) / r.rows
                                        for r in done[-3:]])) * rows
        else:
            # One "unit" = a default LightGBM fold. Measured on LightGBM when it has run;
            # otherwise the most pessimistic of the other families' measurements (tiny
            # linear folds would make every expensive family look affordable).
            measured = {r.family: np.mean(r.fold_seconds) / r.rows / self._family(
                r.family).cost(self.ctx(r.style)) for r in self.records if r.fold_seconds}
            if "lightgbm" in measured:
                unit = float(measured["lightgbm"])
            elif measured:
                unit = float(max(measured.values()))
            else:
                unit = 1e-6 * len(self.y) * max(1, self.X.shape[1]) ** 0.5
            per_fold = unit * family.cost(self.ctx(family.prep_style)) * rows
        prep = (0.0 if family.prep_style in self._prep_seconds
                else 1.5 * len(self.y) * 2e-5 * n_folds)
        lanes = max(1, min(self.trial_threads or self.n_jobs, n_folds))
        return per_fold * math.ceil(n_folds / lanes) + prep

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

    # ---- rungs: row samples for families that cannot stop at a deadline --------------------
    def first_rung(self, family: ModelFamily, *, late: bool = False) -> float:
        """The share of each fold's training rows for ``family``'s first trial: RUNG_ROWS
        rows for a family that cannot stop at a deadline, and for every family whose first
        trial starts after the budget (``late``: it is there to be tried, at its smallest),
        when the clock decides (with a number of trials every trial learns from all rows);
        else all of them."""
        if self.reproducible or (family.stops_at_deadline and not late):
            return 1.0
        fold_rows = min(len(tr) for tr, _ in self.splits.folds)
        return self._rung(RUNG_ROWS / max(1, fold_rows))

    def next_rung(self, rows: float) -> float:
        return self._rung(rows * RUNG_GROWTH)

    @staticmethod
    def _rung(share: float) -> float:
        return 1.0 if share >= 0.5 else share

    def rung_sample(self, y: np.ndarray, rows: float, key: int) -> np.ndarray:
        """Positions of a seeded ``rows`` share of ``y``'s rows, sorted, with at least two
        rows of every class ``y`` has two of (an MLP's early stopping splits by class)."""
        n = len(y)
        pick = np.random.default_rng([self.seed, key]).permutation(n)[: max(1, round(rows * n))]
        if self.task is not Task.REGRESSION:
            extra = []
            for c in np.unique(y):
                have = int(np.count_nonzero(y[pick] == c))
                if have < 2:
                    rest = np.setdiff1d(np.flatnonzero(y == c), pick)
                    extra.extend(rest[: 2 - have].tolist())
            if extra:
                pick = np.concatenate([pick, np.asarray(extra, dtype=pick.dtype)])
        return np.sort(pick)

    def tried(self, name: str) -> bool:
        return any(r.family == name and r.status != "skipped" for r in self.records)

    def untried(self, *, stoppable: bool = False,
                but: ModelFamily | None = None) -> list[ModelFamily]:
        """Families fit for the problem that have had no trial yet (``stoppable``: only
        those that can stop at a deadline, which always get their first default)."""
        return [f for f in self.families if f is not but and not self.tried(f.name)
                and (f.stops_at_deadline or not stoppable)
                and f.supports(self.ctx(f.prep_style))]

    def trial_deadline(self, family: ModelFamily, *, opening: bool = False) -> float | None:
        """When a trial of ``family`` must stop: never past the run's deadline less the refit
        reserve, nor past MAX_TRIAL_SHARE of the budget; and while other families wait for
        their first trial and the estimates say not all of them fit, an equal share of what
        is left, so that a short budget tries every family (boosted, linear and forest fits
        stop there with what they have). The run's ``opening`` trial, the default of the
        family first in the portfolio's order, is not cut to an equal share: the families
        that wait share what it leaves, and those left without time still get their first
        default at its smallest after the budget (trump_tweet_source at --budget 5: an equal
        seventh of what its tree preprocessing left stopped LightGBM after 0.27 s, log loss
        1.09, and the test log loss rose from 0.385 to 0.519)."""
        if self.reproducible:
            return None
        if self.last_chance:
            return self.clock.deadline
        now = time.monotonic()
        end = self.clock.deadline - self.refit_reserve()
        deadline = min(end, now + MAX_TRIAL_SHARE * (self.clock.deadline - self.clock.start))
        untried = [] if opening else self.untried(but=family)
        if untried:
            # The families waiting start at their first rung (all rows for most).
            need = self.estimate_seconds(family) + sum(
                self.estimate_seconds(f, self.first_rung(f)) for f in untried)
            if need > end - now:
                deadline = min(deadline, now + (end - now) / (1 + len(untried)))
        return deadline

    @property
    def ensemble_candidates(self) -> int:
        """How many of the best complete trials the ensemble picks its members from."""
        per_trial = len(self.validated) * max(1, self.n_classes)
        return max(MIN_CANDIDATES, min(ENSEMBLE_CANDIDATES, CANDIDATE_CELLS // per_trial))

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
            for r in complete[self.ensemble_candidates:]:
                if r is not rec:
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
