"""The final model: the chosen members refit on all rows within the deadline (k-fold), or
the holdout models kept as they are; the decision threshold of a binary model."""

from __future__ import annotations

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
    model = Ensemble({k: v[0] for k, v in preps.items()}, fitted, s.task, classes,
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
