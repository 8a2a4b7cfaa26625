"""The budget's side of a search: the clock, and the cost model that keeps every trial and
the final refit inside it (trial deadlines, the refit reserve, row rungs for families that
cannot stop at a deadline). :class:`Budgeting` is mixed into
:class:`mlwright.search.session._Search`, whose state it reads."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.data.kinds import Task
from mlwright.search._base import FitContext, ModelFamily
from mlwright.search.records import TrialRecord
from mlwright.search.splits import Splits

__all__ = ["MAX_TRIAL_SHARE", "RUNG_GROWTH", "RUNG_ROWS", "Budgeting"]

# Leave this share of the budget (at least 1 s) for ensembling and bookkeeping.
_SAFETY = 0.03
MAX_TRIAL_SHARE = 0.4
#: Training rows per fold of the first trial of a family that cannot stop at a deadline
#: (k-NN, MLP): its cost is unknown until measured, as a LightGBM unit says little about an
#: MLP (diamonds' 32k-row holdout fold: default MLP 18.6-19.6 CPU s, LightGBM 0.8 s, 23x
#: where its cost() says 4.7x; the 30 s run that tried it, and neither hist_gb nor k-NN,
#: ended 10 s late), so it is measured on a trial too small to overrun. Each next rung has
#: RUNG_GROWTH times the rows, run only when the time the last one measured, scaled to its
#: rows, fits the trial's share; from half the rows on, a rung is all of them.
RUNG_ROWS = 500
RUNG_GROWTH = 4


class _Clock:
    def __init__(self, budget: float, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.deadline = self.start + budget

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.deadline - time.monotonic()


class Budgeting:
    """Deadlines and estimates of a search (the state is :class:`_Search`'s)."""

    clock: _Clock
    records: list[TrialRecord]
    families: list[ModelFamily]
    splits: Splits
    task: Task
    seed: int
    n_jobs: int
    trial_threads: int | None
    reproducible: bool
    last_chance: bool
    X: Any
    y: np.ndarray
    _prep_seconds: dict[str, float]

    if TYPE_CHECKING:
        def ctx(self, style: str) -> FitContext: ...

        def _family(self, name: str) -> ModelFamily: ...

        @property
        def fold_workers(self) -> int: ...

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
        lanes = [0.0] * self.fold_workers
        styles: set[str] = set()
        for r in done[:3]:
            lanes[int(np.argmin(lanes))] += self.refit_seconds(r)
            styles.add(r.style)
        prep = sum(self.prep_refit_seconds(st) for st in styles)
        return prep + max(lanes) + safety

    def refit_seconds(self, rec: TrialRecord) -> float:
        """Expected seconds of ``rec``'s model fitted on all rows: its folds' mean, grown."""
        return float(np.mean(rec.fold_seconds)) * self.refit_grow()

    def prep_refit_seconds(self, style: str) -> float:
        """Expected seconds of ``style``'s preprocessing fitted on all rows."""
        return self._prep_seconds.get(style, 0.0) * self.refit_grow()

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
