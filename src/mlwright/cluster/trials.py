"""A search's trials on the workers of a Dask cluster: :class:`DaskTrials`.

The client keeps everything that decides: the one Optuna study (ask and tell), the trial
numbers, the duplicate check, the budget, the cost model and each trial's deadline. A
worker runs one trial's folds, as the search in one process would, and hands back its
record: out-of-fold predictions, fold losses and times, the fold models. So the count of
trials is exact (the client numbers them; a trial whose worker died is run again by Dask
or recorded as failed, never dropped) and ensembling and the refit run once, here.

Each worker builds the search's state once (the table, the splits, the folds'
preprocessing, cached per style) from one broadcast copy of the data, and runs one trial
per thread, its folds one after the other. Pruning: a worker prunes against the
completed trials the client's study held when the trial started (Optuna's own pruner
over a copy of them); the client reports the trial's fold losses to its study after.
Deadlines travel as seconds left, not clock readings, so hosts need not share a clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import uuid
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import MlwrightError
from mlwright.search._base import ModelFamily
from mlwright.search.records import TrialRecord
from mlwright.search.runner import TrialRunner
from mlwright.search.session import TrialPlan, _Clock, _Search

__all__ = ["DaskTrials"]

log = get_logger(__name__)

#: Per worker process: the search states built from the broadcast specs, by spec key.
_SEARCHES: dict[str, _Search] = {}


@dataclasses.dataclass
class _Spec:
    """What a worker needs to rebuild a search's state (broadcast once)."""

    key: str
    state: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """A TrialPlan with its deadline as seconds left when the trial was started."""

    seconds_left: float | None
    first: bool
    others_complete: bool
    last_chance: bool

    def localize(self, started: float) -> TrialPlan:
        deadline = None if self.seconds_left is None else started + self.seconds_left
        return TrialPlan(deadline, self.first, self.others_complete, self.last_chance)


@dataclasses.dataclass
class _Pruning:
    """The client study's pruner and completed trials when a trial started."""

    pruner: Any
    completed: list[Any]

    def trial(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # a study per trial: no log
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(),
                                    pruner=self.pruner)
        study.add_trials(self.completed)
        return study.ask()


@dataclasses.dataclass
class _StyleState:
    """What a worker learned about a preprocessing style, for the client's cost model,
    fit contexts and (when asked) the fold preprocessing of bagged or holdout members."""

    ctx: Any
    prep_seconds: float | None
    fold_preps: list[Any] | None


def _worker_search(spec: _Spec) -> _Search:
    s = _SEARCHES.get(spec.key)
    if s is None:
        # One thread per trial: the worker runs as many trials at once as it has threads.
        s = _Search(**spec.state, clock=_Clock(math.inf), n_jobs=1, on_trial=None)
        _SEARCHES[spec.key] = s
    return s


def _forget(key: str) -> None:
    _SEARCHES.pop(key, None)


def _run_remote(spec: _Spec, number: int, family_name: str, params: dict[str, Any],
                target_transform: str | None, plan: _Plan, pruning: _Pruning | None,
                want_preps: bool, rows: float = 1.0) -> tuple[TrialRecord, _StyleState, str]:
    """One trial on a worker (see the module docstring)."""
    from distributed import get_worker

    started = time.monotonic()
    s = _worker_search(spec)
    family = s._family(family_name)
    rec = TrialRecord(number, family.name, params, family.prep_style, target_transform,
                      rows=rows)
    trial = pruning.trial() if pruning is not None else None
    s.run_planned(rec, family, lambda: plan.localize(started), trial)
    style = family.prep_style
    state = _StyleState(s._ctx.get(style), s._prep_seconds.get(style),
                        s._fold_preps.get(style) if want_preps else None)
    return rec, state, str(get_worker().address)


class DaskTrials(TrialRunner):
    """Runs trials on ``client``'s workers, one per worker thread at a time."""

    #: Starts of one trial, the first included, before it is recorded as failed (a trial
    #: starts again when its worker's death lost the search's data, see ``finished``).
    MAX_STARTS = 3

    def __init__(self, client: Any) -> None:
        self.client = client
        self.slots = 1
        self._spec: Any = None
        self._spec_value: _Spec | None = None
        self._key = ""
        self._running: dict[Any, tuple[TrialRecord, Any, int]] = {}

    def open(self, s: _Search) -> None:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        self.slots = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
        s.trial_threads = 1
        self._key = f"mlwright-search-{uuid.uuid4().hex}"
        state = {"X": s.X, "y": s.y, "task": s.task, "metric": s.metric, "kinds": s.kinds,
                 "splits": s.splits, "families": s.families, "n_trials": s.n_trials,
                 "search": s.search, "seed": s.seed, "class_weight": s.class_weight,
                 "n_classes": s.n_classes}
        self._spec_value = _Spec(self._key, state)
        self._spec = self._scatter()
        log.info("trials run on %d Dask worker threads (%d workers)", self.slots,
                 len(workers))

    def _scatter(self) -> Any:
        return self.client.scatter(self._spec_value, broadcast=True, hash=False)

    def close(self, s: _Search) -> None:
        for future in self._running:
            future.cancel()
        self._running.clear()
        if self._spec is not None:
            with contextlib.suppress(Exception):  # a cluster gone by now keeps nothing
                self.client.run(_forget, self._key)
            self._spec.release()
            self._spec = None

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self, s: _Search, number: int, family: ModelFamily, params: dict[str, Any],
              target_transform: str | None, trial: Any, *, rows: float = 1.0) -> None:

        rec = TrialRecord(number, family.name, params, family.prep_style, target_transform,
                          rows=rows)
        s.records.append(rec)  # tried from now on (status "running")
        self._submit(s, rec, family, trial, 1)

    def _submit(self, s: _Search, rec: TrialRecord, family: ModelFamily, trial: Any,
                starts: int) -> None:
        import optuna

        p = s.plan_trial(rec, family)
        plan = _Plan(None if p.deadline is None else p.deadline - time.monotonic(),
                     p.first, p.others_complete, p.last_chance)
        pruning = None
        if trial is not None and s.splits.n_folds > 1 and rec.rows >= 1.0:  # see run_planned
            study = trial.study
            completed = study.get_trials(deepcopy=False,
                                         states=(optuna.trial.TrialState.COMPLETE,))
            pruning = _Pruning(study.pruner, completed)
        future = self.client.submit(
            _run_remote, self._spec, rec.number, family.name, rec.params,
            rec.target_transform, plan, pruning, family.prep_style not in s._fold_preps,
            rec.rows, pure=False, key=f"mlwright-trial-{rec.number}-{uuid.uuid4().hex[:8]}")
        self._running[future] = (rec, trial, starts)

    def finished(self, s: _Search, *, wait: bool) -> list[tuple[TrialRecord, Any]]:
        from distributed import wait as wait_for
        from distributed.client import FuturesCancelledError

        if wait and self._running:
            # A cancelled trial (below) ends the wait too. as_current(): wait() asks for
            # the process's default client, and a client opened from an address
            # (--cluster tcp://...) is not one.
            with contextlib.suppress(FuturesCancelledError), self.client.as_current():
                wait_for(list(self._running), return_when="FIRST_COMPLETED")
        out = []
        for future in [f for f in self._running if f.done()]:
            rec, trial, starts = self._running.pop(future)
            if future.status == "cancelled" and starts < self.MAX_STARTS:
                # The worker that died held the only copy of the search's data (Dask keeps
                # one replica of data no task waits for): send it again, start the trial
                # again under its own number.
                log.warning("trial %d lost its worker; starting it again", rec.number)
                if self._spec.status != "finished":
                    self._spec = self._scatter()
                self._submit(s, rec, s._family(rec.family), trial, starts + 1)
                continue
            self._adopt(s, rec, trial, future)
            out.append((rec, trial))
        return out

    def _adopt(self, s: _Search, rec: TrialRecord, trial: Any, future: Any) -> None:
        """Copy a worker's record into the client's (same object, already listed)."""
        if future.status == "error":
            exc = future.exception()
            if isinstance(exc, MlwrightError):
                raise exc
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
            log.warning("trial %d (%s) failed on the cluster: %s", rec.number, rec.family,
                        rec.error)
        elif future.status == "cancelled":
            rec.status, rec.error = "failed", "cancelled on the cluster"
        else:
            remote, style, worker = future.result()
            for f in dataclasses.fields(TrialRecord):
                if f.name not in ("number", "finished_at", "deadline"):  # the client's
                    setattr(rec, f.name, getattr(remote, f.name))
            rec.worker = worker
            if style.ctx is not None and rec.style not in s._ctx:
                s._ctx[rec.style] = dataclasses.replace(style.ctx, n_jobs=s.n_jobs)
            if style.prep_seconds is not None:
                s._prep_seconds.setdefault(rec.style, style.prep_seconds)
            if style.fold_preps is not None:
                s._fold_preps.setdefault(rec.style, style.fold_preps)
            if (trial is not None and rec.status == "complete" and s.splits.n_folds > 1
                    and rec.rows >= 1.0):
                # What the local search reports fold by fold: the pruner of later trials
                # compares against completed trials' intermediate values.
                for j in range(len(rec.fold_losses)):
                    trial.report(sum(rec.fold_losses[:j + 1]) / (j + 1), j)
        rec.finished_at = s.clock.elapsed()
        s.finish_trial(rec)
