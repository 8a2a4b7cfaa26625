"""The order of trials: the families' default configurations first (cheapest, most
reliable first, interleaved across families), then Optuna's suggestions, each only when the
cost model says it fits in what the budget has left."""

from __future__ import annotations

import logging
from typing import Any

from mlwright._logging import get_logger
from mlwright.search._base import ModelFamily
from mlwright.search.session import _Search

log = get_logger(__name__)


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
