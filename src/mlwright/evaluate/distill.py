"""The teacher and its ``--distill`` student side by side, so that the user picks with
evidence: each one's CV score with the range CV predicts for a test set
(:func:`~mlwright.evaluate.scores.predictive_interval`, the honesty check's interval, on the
same folds and the true labels), and each one's single-row latency and size measured on its
compiled predictor (:func:`mlwright.search.latency.measure`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.evaluate.scores import REPORTED, Predictions, decide, predictive_interval

__all__ = ["cv_range", "side_by_side"]


def cv_range(task: str, metric: Any, y: np.ndarray, raw: np.ndarray, mask: np.ndarray,
             fold_losses: list[float], classes: list[Any] | None, threshold: float | None,
             n_test: int, seed: int = 0) -> dict[str, Any] | None:
    """The 95% range of ``metric`` (the search's Metric) CV predicts on ``n_test`` new rows,
    from out-of-fold outputs ``raw`` on the validated rows ``mask`` (encoded ``y``), fold
    spread included; None for a metric the report does not list."""
    if metric.name not in REPORTED[task]:
        return None
    rows = np.flatnonzero(mask)
    if task == "regression":
        p = Predictions(task, y[rows].astype(float), raw[rows].astype(float))
    else:
        proba = raw[rows].astype(float)
        p = Predictions(task, y[rows], decide(proba, threshold), proba, list(classes or []),
                        threshold)
    folds = [metric.to_score(v) for v in fold_losses]
    rng = predictive_interval(p, metric.name, n_test, fold_scores=folds, seed=seed)
    return {"n_test": n_test, **rng.interval.to_dict()}


def side_by_side(search: Any, rows: Any, *, contract: Any = None, n_test: int | None = None,
                 seed: int = 0, shipped: str = "teacher", latency: bool = True
                 ) -> dict[str, Any]:
    """The comparison of ``search`` (a SearchResult with a ``student``): intervals for a
    test set of ``n_test`` rows (default: a fifth of the validated rows, as the report's
    honesty check), latencies on one-row calls over ``rows`` (raw feature rows)."""
    from mlwright.search.latency import measure

    student = search.student
    task, metric, mask = search.task.value, search.metric, search.oof_mask
    n = int(mask.sum())
    n_test = n_test or max(10, n // 5)
    out: dict[str, Any] = {"metric": metric.name, "n_test": n_test, "shipped": shipped}
    for name, model, oof, losses in (
            ("teacher", search.model, search.oof, search.fold_losses),
            ("student", student.model, student.oof, student.fold_losses)):
        entry: dict[str, Any] = {
            "cv": metric.to_score(metric.loss(search.y_encoded[mask], oof[mask])),
            "cv_folds": [metric.to_score(v) for v in losses],
            "interval": cv_range(task, metric, search.y_encoded, oof, mask, losses,
                                 search.classes, getattr(model, "threshold", None), n_test,
                                 seed),
            # Trials blended, and fitted estimators (a member shipped as its fold models
            # counts each of them).
            "members": len(model.describe()), "estimators": len(model.members)}
        if latency:
            entry.update(measure(model, rows, contract=contract))
        out[name] = entry
    out["student"].update({"seconds": student.seconds, "n_augmented": student.n_augmented,
                           "params": student.params, "notes": student.notes})
    interval = out["teacher"]["interval"]
    out["student_inside_teacher_interval"] = (
        None if interval is None or interval["low"] is None else
        bool(interval["low"] <= out["student"]["cv"] <= interval["high"]))
    if latency:
        out["latency_ratio"] = out["teacher"]["p50_us"] / out["student"]["p50_us"]
    return out
