"""The final model: the chosen members refit on all rows within the deadline (k-fold), or
as their fold models when a refit cannot finish (never a refit cut short) or the budget is
long (``BAG_FROM``), or the holdout models kept as they are; the decision threshold of a
binary model."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from mlwright._logging import get_logger
from mlwright.data.kinds import Task
from mlwright.exceptions import ConfigError
from mlwright.search._base import FitContext
from mlwright.search.ensemble import Ensemble
from mlwright.search.records import TrialRecord
from mlwright.search.session import _Clock, _Search

log = get_logger(__name__)

#: From this time budget on, a k-fold member whose fold models were kept ships as them (the
#: models its out-of-fold predictions came from, as AutoGluon's best_quality bags) instead
#: of a refit on all rows. telco_churn at 300 s: the same four LightGBM members tested
#: 0.8474 ROC AUC refit and 0.8479 as their fold models (CV 0.8513). Shorter budgets keep
#: the refit: one model per member predicts and explains k times faster, which a short run's
#: report and a latency-bound server need (decision 0038). Not with a number of trials or a
#: serving budget (``--max-latency-ms``/``--max-size-mb`` measure refit models).
BAG_FROM = 120.0


def shippable(s: _Search, candidates: list[TrialRecord], clock: _Clock
              ) -> list[TrialRecord]:
    """The ensemble candidates that can ship as evaluated within the budget: those whose
    fold models were kept (they ship as those when their refit cannot finish) and those
    whose refit on all rows is expected to finish in the time left. Any other would be
    refit past the deadline (ames_housing at 300 s: two CatBoost members outside the best
    ``KEEP_FOLD_MODELS`` trials, 20 s over). The best candidate always stays, and so does
    every one where the clock decides nothing (holdout models, a number of trials)."""
    if not s.refits or s.reproducible or not candidates:
        return candidates
    left = clock.left()
    kept = [r for r in candidates if r.fold_models
            or s.prep_refit_seconds(r.style) + s.refit_seconds(r) <= left]
    if len(kept) < len(candidates):
        log.info("%d ensemble candidates left out: their refit would end past the budget "
                 "and their fold models were not kept",
                 len(candidates) - len(kept))
    best = candidates[0]
    return kept if kept and kept[0] is best else [best, *kept]


def _refit(s: _Search, members: list[TrialRecord], weights: dict[int, float],
           classes: list[Any] | None, feature_names: list[str],
           clock: _Clock, *, bag: bool = False) -> tuple[Ensemble, dict[int, float]]:
    """Fit the chosen members on all rows, in parallel single-threaded fits (see
    ``_Search.fold_workers``), heaviest weight first; with ``bag`` (see ``BAG_FROM``)
    members that kept their fold models ship as those, and only the others are refit.

    The model shipped is the model evaluated: a member whose refit is not expected to
    finish before the deadline, or whose refit the deadline cut short, ships as its k fold
    models with its weight split among them (a bagged member: what the CV scored). A member
    without kept fold models (outside the best ``KEEP_FOLD_MODELS`` trials) is one whose
    refit was expected to finish (:func:`shippable`), or the best trial itself: it is refit
    to the end, past the deadline if it must, with a warning. With a number of trials
    (``s.reproducible``) every member is refit to the end.
    """
    from concurrent.futures import ThreadPoolExecutor

    by_name = {f.name: f for f in s.families}
    # The same threads per fit as the search measured with, so its reserve holds.
    workers = s.fold_workers
    threads = max(1, s.n_jobs // workers)
    deadline = None if s.reproducible else clock.deadline
    order = sorted(members, key=lambda r: -weights[r.number])
    refit_recs: list[TrialRecord] = []
    bagged: list[TrialRecord] = []
    lanes = [0.0] * workers  # expected busy seconds per worker thread
    prep_cost: dict[str, float] = {}
    for rec in order:
        if bag and rec.fold_models:
            bagged.append(rec)
            continue
        cost = s.refit_seconds(rec)
        prep = 0.0 if rec.style in prep_cost else s.prep_refit_seconds(rec.style)
        lane = int(np.argmin(lanes))
        fits = sum(prep_cost.values()) + prep + lanes[lane] + cost <= clock.left()
        if deadline is not None and not fits:
            if rec.fold_models:
                log.warning("no time left to refit %s (trial %d) on all rows; it ships as its "
                            "%d fold models", rec.family, rec.number, len(rec.fold_models))
                bagged.append(rec)
                continue
            log.warning("no time left to refit %s (trial %d) on all rows, and its fold models "
                        "were not kept: refitting it past the budget", rec.family, rec.number)
        prep_cost.setdefault(rec.style, prep)
        lanes[lane] += cost
        refit_recs.append(rec)
    preps: dict[str, tuple[Any, Any]] = {}
    # Grouped exactly when the search's folds were: the refit is the model the CV scored.
    row_groups = {style: s.row_groups if s.grouped(style) else None
                  for style in dict.fromkeys(r.style for r in refit_recs)}
    for style, groups in row_groups.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            prep = s._prep(style)
            if groups is None:
                preps[style] = (prep, prep.fit_transform(s.X, s.y))
            else:  # statistics from every row, features for each distinct row once
                preps[style] = (prep.fit(s.X, s.y), prep.transform(s.X.iloc[groups.first]))

    def fit_member(rec: TrialRecord) -> dict[str, Any] | None:
        family = by_name[rec.family]
        Xt = preps[rec.style][1]
        ctx = FitContext(**{**s.ctx(rec.style).__dict__, "n_features": Xt.shape[1],
                            "n_jobs": 1 if rec.rows < 1.0 else threads})  # see run_planned
        est = family.build(family.refit_params(dict(rec.params), rec.infos, ctx), ctx)
        y = np.log1p(s.y) if rec.target_transform == "log" else s.y
        counts: dict[str, Any] = {}
        groups = row_groups[rec.style]  # Xt holds each distinct row once when set
        if rec.rows < 1.0:
            # A rung learns from the same share of all rows as of each fold's: the model
            # the CV evaluated, on about 1/(k-1) more rows, as for every member.
            pick = s.rung_sample(s.y, rec.rows, s.splits.n_folds)
            Xt, y = Xt[pick if groups is None else groups.of_row[pick]], y[pick]
        elif groups is not None and family.weighted:
            # duplicate rows once, weighted, as the search fit them
            y = y[groups.first]
            counts["sample_weight"] = groups.weights()
        elif groups is not None:
            Xt = Xt[groups.of_row]
        until = deadline if rec.fold_models else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Boosted members stop at the deadline with the rounds they have: such a fit
            # was not evaluated by anything, so it is not shipped (see above).
            family.fit(est, Xt, y, ctx, deadline=until, **counts)
        if until is not None and time.monotonic() > until:
            return None
        member = {"family": rec.family, "trial": rec.number, "style": rec.style,
                  "estimator": est, "weight": weights[rec.number],
                  "target_transform": rec.target_transform}
        if s.task is Task.REGRESSION:
            # Linear members extrapolate; on the log scale a wild guess becomes a huge one.
            member["clip"] = (float(s.y.min()), float(s.y.max()))
        return member

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(fit_member, refit_recs))
    fitted: list[dict[str, Any]] = []
    model_preps = {k: v[0] for k, v in preps.items()}
    for rec, member in zip(refit_recs, outcomes, strict=True):
        if member is None:
            log.warning("the refit of %s (trial %d) on all rows was cut short by the "
                        "deadline; it ships as its %d fold models", rec.family, rec.number,
                        len(rec.fold_models or []))
            bagged.append(rec)
        else:
            fitted.append(member)
    for rec in sorted(bagged, key=lambda r: -weights[r.number]):
        fitted.extend(_fold_members(s, rec, weights[rec.number], model_preps))
    for member in fitted:
        _single_threaded(member["estimator"])
    total = sum(m["weight"] for m in fitted)
    kept: dict[int, float] = {}
    for m in fitted:
        m["weight"] = m["weight"] / total
        kept[m["trial"]] = kept.get(m["trial"], 0.0) + m["weight"]
    # Members of a style shared by refit and bagged ones keep one order: refit first.
    model_preps = {k: model_preps[k] for k in dict.fromkeys(m["style"] for m in fitted)}
    model = Ensemble(model_preps, fitted, s.task, classes, feature_names)
    return model, kept


def _fold_members(s: _Search, rec: TrialRecord, weight: float,
                  preps: dict[str, Any]) -> list[dict[str, Any]]:
    """``rec``'s fold models as ensemble members, each with its fold's preprocessing (under
    the style ``"<style>#<fold>"``) and an equal part of ``weight``: on fold j's validation
    rows, fold j's member predicts exactly the out-of-fold prediction the CV scored."""
    assert rec.fold_models  # callers pick members that kept them
    out = []
    k = len(rec.fold_models)
    for j, est in enumerate(rec.fold_models):
        key = f"{rec.style}#{j}"
        preps[key] = s._fold_preps[rec.style][j]
        member = {"family": rec.family, "trial": rec.number, "style": key, "fold": j,
                  "estimator": est, "weight": weight / k,
                  "target_transform": rec.target_transform}
        if s.task is Task.REGRESSION:  # the clip the search applied to this fold
            tr = s.splits.folds[j][0]
            member["clip"] = (float(s.y[tr].min()), float(s.y[tr].max()))
        out.append(member)
    return out


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
    return Ensemble(preps, fitted, s.task, classes, feature_names)


def _single_threaded(estimator: Any) -> None:
    """Predict with one thread: for the small batches a served model sees, starting threads
    costs more than it saves (a forest with n_jobs=2 spends milliseconds per call on it)."""
    params = estimator.get_params(deep=False)
    for name in ("n_jobs", "thread_count"):
        if name in params:
            estimator.set_params(**{name: 1})


def check_threshold(how: str | float | None) -> None:
    """Raise ConfigError for a threshold the refit could not use (checked before the search,
    so that a typo does not cost the whole budget)."""
    if how is None:
        return
    if isinstance(how, int | float):
        if not 0.0 < float(how) < 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {how}.")
    elif str(how) not in ("f1", "balanced_accuracy"):
        raise ConfigError(f"threshold must be a number, 'f1' or 'balanced_accuracy'; got {how!r}.")


def _choose_threshold(y: np.ndarray, proba: np.ndarray, how: str | float) -> float:
    check_threshold(how)
    if isinstance(how, int | float):
        return float(how)
    from sklearn.metrics import balanced_accuracy_score, f1_score

    scorer = {"f1": f1_score, "balanced_accuracy": balanced_accuracy_score}[str(how)]
    grid = np.unique(np.quantile(proba[:, 1], np.linspace(0.01, 0.99, 99)))
    scores = [scorer(y, (proba[:, 1] >= t).astype(int)) for t in grid]
    return float(grid[int(np.argmax(scores))])


def fold_ensemble(s: _Search, members: list[TrialRecord], weights: dict[int, float], j: int,
                  classes: list[Any] | None, feature_names: list[str]
                  ) -> tuple[Ensemble | None, list[int]]:
    """The ensemble the CV scored on fold ``j``'s validation rows: each member's fold-``j``
    model (the holdout model itself with a holdout) with fold ``j``'s preprocessing, the
    weights renormalised over the members that kept their fold models. Returns it (None if
    no member did) and the trials left out. Call before the search drops its fold models.
    """
    fitted: list[dict[str, Any]] = []
    preps: dict[str, Any] = {}
    missing: list[int] = []
    tr = s.splits.folds[j][0]
    for rec in members:
        est = rec.fold_models[j] if rec.fold_models else (None if s.refits else rec.estimator)
        if est is None:
            missing.append(rec.number)
            continue
        member = {"family": rec.family, "trial": rec.number, "style": rec.style,
                  "estimator": est, "weight": weights[rec.number],
                  "target_transform": rec.target_transform}
        if s.task is Task.REGRESSION:  # the clip the search applied to this fold
            member["clip"] = (float(s.y[tr].min()), float(s.y[tr].max()))
        preps[rec.style] = s._fold_preps[rec.style][j]
        fitted.append(member)
    if not fitted:
        return None, missing
    total = sum(m["weight"] for m in fitted)
    for m in fitted:
        m["weight"] = m["weight"] / total
    return Ensemble(preps, fitted, s.task, classes, feature_names), missing
