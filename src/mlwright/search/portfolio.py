"""The order of trials: the families' default configurations first (cheapest, most
reliable first, interleaved across families), then Optuna's suggestions, each only when the
cost model says it fits in what the budget has left. Every family that can stop at a
deadline gets its first default even when the estimate says it will not finish (it stops
at its share of the time, see ``_Search.trial_deadline``), and a configuration equal to
one already tried (floats to two significant digits) is not run again."""

from __future__ import annotations

import logging
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


def config_key(family: str, params: dict[str, Any], target_transform: str | None
               ) -> tuple[Any, ...]:
    """What makes two configurations the same: floats to two significant digits (0.00100
    and 0.00104 fit the same model for every purpose the search has)."""
    def rounded(v: Any) -> Any:
        return float(f"{v:.2g}") if isinstance(v, float) else v

    return (family, target_transform, tuple(sorted((k, rounded(v)) for k, v in params.items())))


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
        portfolio += [(f, c, tf) for f in zoo for c in f.grid_configs(s.ctx(f.prep_style))
                      for tf in (["log", None] if s.log_target else [None])]
    names = [f.name for f in zoo]
    by_name = {f.name: f for f in zoo}
    number = first_number
    timed = not (s.reproducible or s.last_chance)
    seen = {config_key(r.family, r.params, r.target_transform) for r in s.records
            if r.status != "skipped"}
    duplicates = 0
    smallest = False  # time is up: only first defaults, at their smallest
    while s.n_trials is None or number < s.n_trials:
        left = s.clock.left() - s.refit_reserve()
        if left <= 0 and timed:
            # Time is up. Each family that can stop at a deadline and has had no trial still
            # gets its first default, at its smallest (the run's deadline has passed, so each
            # fold stops at its first round or chunk), while the run stays well inside the
            # acceptance bound of budget x 1.05 + 5 s; nothing else runs.
            firsts: dict[str, tuple[ModelFamily, dict[str, Any], str | None]] = {}
            for item in portfolio:
                if item[0].stops_at_deadline and not s.tried(item[0].name):
                    firsts.setdefault(item[0].name, item)
            portfolio, timed, s.last_chance, smallest = list(firsts.values()), False, True, True
        if smallest and (not portfolio or s.clock.left() < -_overrun(s)):
            break
        if portfolio:
            family, config, tf = portfolio.pop(0)
            first = family.stops_at_deadline and not s.tried(family.name)
            if timed and s.estimate_seconds(family) > left and not first:
                log.info("skipping %s default: expected %.1fs, %.1fs left", family.name,
                         s.estimate_seconds(family), left)
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
        if not family.supports(ctx) or (timed and s.estimate_seconds(family) > left
                                        and not (family.stops_at_deadline
                                                 and not s.tried(family.name))):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            # TPE learns to avoid it; stop when nothing affordable is left.
            if all(s.estimate_seconds(f) > left or not f.supports(s.ctx(f.prep_style))
                   for f in zoo):
                break
            continue
        params = family.suggest(trial, ctx)
        key = config_key(family.name, params, tf)
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
        runner.start(s, number, family, params, tf, trial)
        number += 1
        for rec, told in runner.finished(s, wait=runner.running >= runner.slots):
            _tell(s, study, rec, told)
    while runner.running:
        for rec, told in runner.finished(s, wait=True):
            _tell(s, study, rec, told)


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
