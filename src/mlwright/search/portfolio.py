"""The order of trials: the families' default configurations first (cheapest, most
reliable first, interleaved across families), then Optuna's suggestions, each only when the
cost model says it fits in what the budget has left. Every family gets its first default
even when the estimate says it will not finish: one that can stop at a deadline stops at
its share of the time (see ``_Search.trial_deadline``); one that cannot (k-NN, MLP) runs
it as a rung, on a few hundred of each fold's training rows, and on RUNG_GROWTH times more
rows, up to all of them, only while the time each rung measured says the next fits its
share. A configuration equal to one already tried (floats to two significant digits, and
the same rows) is not run again."""

from __future__ import annotations

import logging
import time
from typing import Any

from mlwright._logging import get_logger
from mlwright.search._base import ModelFamily
from mlwright.search.records import TrialRecord
from mlwright.search.runner import TrialRunner
from mlwright.search.session import _Search

log = get_logger(__name__)

#: Suggestions in a row equal to tried configurations before one comes from random
#: sampling instead of TPE, and before the search stops (the space is used up).
_RANDOM_AFTER_DUPLICATES = 3
_STOP_AFTER_DUPLICATES = 100


def config_key(family: str, params: dict[str, Any], target_transform: str | None,
               rows: float = 1.0) -> tuple[Any, ...]:
    """What makes two configurations the same: floats to two significant digits (0.00100
    and 0.00104 fit the same model for every purpose the search has), and the share of
    rows they learn from (a rung and the full trial differ)."""
    def rounded(v: Any) -> Any:
        return float(f"{v:.2g}") if isinstance(v, float) else v

    key = (family, target_transform, tuple(sorted((k, rounded(v)) for k, v in params.items())))
    return key if rows >= 1.0 else (*key, ("rows", rounded(rows)))


Item = tuple[ModelFamily, dict[str, Any], str | None, float]


def _portfolio(search: _Search) -> list[Item]:
    """Default configurations in the order they are tried, each with its share of rows (a
    family's first at its first rung)."""
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
    out: list[Item] = []
    for rank, _, f, c, tf in items:
        out.append((f, c, tf, search.first_rung(f) if rank == 0 else 1.0))
    return out


def _fits(s: _Search, family: ModelFamily, rows: float, left: float) -> bool:
    """Whether a trial that is not its family's first fits: within what is left for a
    family that stops at its deadline; within its share of it (``trial_deadline``) for one
    that cannot stop, so that it does not take the time of the families still waiting."""
    need = s.estimate_seconds(family, rows)
    if family.stops_at_deadline:
        return need <= left
    deadline = s.trial_deadline(family)
    return need <= (left if deadline is None else deadline - time.monotonic())


def _overrun(s: _Search) -> float:
    """How far past the budget a first trial at its smallest may still start."""
    return 0.05 * (s.clock.deadline - s.clock.start) + 2.0


def _search_loop(s: _Search, study: Any, zoo: list[ModelFamily], runner: TrialRunner, *,
                 first_number: int = 0) -> None:
    """Start trials on ``runner`` until the budget or ``s.n_trials`` says stop, then wait
    for the running ones: exactly ``s.n_trials`` trials when a number is given."""
    import optuna

    portfolio = _portfolio(s)
    if s.search == "grid":
        portfolio += [(f, c, tf, 1.0) for f in zoo for c in f.grid_configs(s.ctx(f.prep_style))
                      for tf in (["log", None] if s.log_target else [None])]
    # Rungs started (trial number -> its portfolio item): when one completes, the next rung
    # of the same configuration joins the end of the portfolio.
    rungs: dict[int, Item] = {}
    names = [f.name for f in zoo]
    by_name = {f.name: f for f in zoo}
    number = first_number
    timed = not (s.reproducible or s.last_chance)
    seen = {config_key(r.family, r.params, r.target_transform, r.rows) for r in s.records
            if r.status != "skipped"}
    duplicates = 0
    smallest = False  # time is up: only first defaults, at their smallest
    while s.n_trials is None or number < s.n_trials:
        left = s.clock.left() - s.refit_reserve()
        if left <= 0 and timed:
            # Time is up. Each family that has had no trial still gets its first default, at
            # its smallest: on RUNG_ROWS of each fold's training rows, and as the run's
            # deadline has passed, each fold of a family that can stop stops at its first
            # round or chunk; cheapest first, while the run stays well inside the
            # acceptance bound of budget x 1.05 + 5 s. Nothing else runs.
            firsts: dict[str, Item] = {}
            for it in portfolio:
                if not s.tried(it[0].name):
                    firsts.setdefault(it[0].name, (*it[:3], s.first_rung(it[0], late=True)))
            portfolio = sorted(firsts.values(), key=lambda it: s.estimate_seconds(it[0], it[3]))
            timed, s.last_chance, smallest = False, True, True
        if smallest and (not portfolio or s.clock.left() < -_overrun(s)):
            break
        rows = 1.0
        item: Item | None = None
        if portfolio:
            item = portfolio.pop(0)
            family, config, tf, rows = item
            first = not s.tried(family.name)
            if timed and not first and not _fits(s, family, rows, left):
                log.info("skipping %s default on %.0f%% of the rows: expected %.1fs, %.1fs "
                         "left", family.name, 100 * rows, s.estimate_seconds(family, rows),
                         left)
                continue
            fixed = {"family": family.name, **config}
            if s.log_target:
                fixed["target_transform"] = tf or "none"
            study.enqueue_trial(fixed, skip_if_exists=False)
        elif s.search == "grid":
            break
        sampler = study.sampler
        if duplicates >= _RANDOM_AFTER_DUPLICATES:  # TPE keeps proposing what was tried
            study.sampler = optuna.samplers.RandomSampler(seed=s.seed + number + duplicates)
        try:
            trial = study.ask()
        finally:
            study.sampler = sampler
        fam_name = trial.suggest_categorical("family", names)
        family = by_name[fam_name]
        ctx = s.ctx(family.prep_style)
        tf = None
        if s.log_target:
            tf = trial.suggest_categorical("target_transform", ["log", "none"])
            tf = None if tf == "none" else tf
        if item is None or item[0] is not family:
            # Optuna's own suggestion: all rows, or a first rung for a family's first trial.
            rows = 1.0 if s.tried(family.name) else s.first_rung(family)
        if not family.supports(ctx) or (timed and s.tried(family.name)
                                        and not _fits(s, family, rows, left)):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            # TPE learns to avoid it; stop when nothing affordable is left.
            if all(s.estimate_seconds(f) > left or not f.supports(s.ctx(f.prep_style))
                   for f in zoo):
                break
            continue
        params = family.suggest(trial, ctx)
        key = config_key(family.name, params, tf, rows)
        if key in seen:
            # Told as pruned (no value): TPE moves away from it, and no time is spent.
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            duplicates += 1
            if duplicates >= _STOP_AFTER_DUPLICATES:
                log.info("%d suggestions in a row were tried before: search stops",
                         duplicates)
                break
            continue
        seen.add(key)
        duplicates = 0
        if rows < 1.0 and item is not None:
            rungs[number] = item
        runner.start(s, number, family, params, tf, trial, rows=rows)
        number += 1
        for rec, told in runner.finished(s, wait=runner.running >= runner.slots):
            _tell(s, study, rec, told)
            _next_rung(s, rec, rungs, portfolio, timed and not smallest)
    while runner.running:
        for rec, told in runner.finished(s, wait=True):
            _tell(s, study, rec, told)


def _next_rung(s: _Search, rec: TrialRecord, rungs: dict[int, Item], portfolio: list[Item],
               timed: bool) -> None:
    """A rung that completed puts the next one of its configuration at the end of the
    portfolio (it runs there only if the time this one measured says it fits)."""
    item = rungs.pop(rec.number, None)
    if item is not None and timed and rec.status == "complete":
        portfolio.append((*item[:3], s.next_rung(rec.rows)))


def _tell(s: _Search, study: Any, rec: TrialRecord, trial: Any) -> None:
    """Optuna learns the trial's outcome; the caller's callback sees the record."""
    import optuna

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
