"""``--trim``: the fewest ensemble members whose out-of-fold score stays within the CV noise
of the full ensemble's.

After greedy selection (:mod:`mlwright.search.ensemble`), members are dropped one at a time,
each time the one whose removal costs least (the others' weights renormalised), while the
CV loss of what is left exceeds the full ensemble's by at most the *noise*: the standard
error of the full ensemble's CV score, ``sd(fold losses) / sqrt(folds)``. With a single
validation split (holdout) the validated rows are cut into ``HOLDOUT_PARTS`` seeded parts
and their spread stands in for the folds'. The bound is on the total loss against the full
ensemble, not step by step, so small losses cannot add up past it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwright.scoring import Metric

__all__ = ["HOLDOUT_PARTS", "Trim", "cv_noise", "trim_weights"]

HOLDOUT_PARTS = 5


@dataclass
class Trim:
    """What ``trim_weights`` decided: the weights kept, the members dropped in order, and
    the losses before and after against the noise allowed."""

    noise: float
    noise_from: str  # "folds" or "holdout parts"
    loss_before: float
    loss_after: float
    weights: dict[int, float]  # trial number -> weight, renormalised
    dropped: list[dict[str, Any]] = field(default_factory=list)
    # Measured on fold-0 stand-ins (see search.engine): full and trimmed ensembles.
    measured: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, metric: Metric) -> dict[str, Any]:
        return {"noise": self.noise, "noise_from": self.noise_from,
                "cv_before": metric.to_score(self.loss_before),
                "cv_after": metric.to_score(self.loss_after),
                "kept": {str(k): v for k, v in self.weights.items()},
                "dropped": self.dropped, "measured": self.measured}


def _part_losses(oof: np.ndarray, y: np.ndarray, metric: Metric,
                 parts: list[np.ndarray]) -> list[float]:
    out = []
    for rows in parts:
        try:
            value = metric.loss(y[rows], oof[rows])
        except ValueError:  # a part with one class has no AUC
            continue
        if np.isfinite(value):
            out.append(float(value))
    return out


def cv_noise(oof: np.ndarray, y: np.ndarray, metric: Metric,
             folds: list[tuple[np.ndarray, np.ndarray]], mask: np.ndarray,
             seed: int = 0) -> tuple[float, str]:
    """The standard error of the CV loss of ``oof``, and what it was measured over."""
    parts = [va for _, va in folds if len(va) and mask[va].all()]
    source = "folds"
    if len(parts) < 2:
        rows = np.random.default_rng(seed).permutation(np.flatnonzero(mask))
        parts, source = np.array_split(rows, HOLDOUT_PARTS), "holdout parts"
    losses = _part_losses(oof, y, metric, parts)
    if len(losses) < 2:
        return 0.0, source
    return float(np.std(losses, ddof=1) / np.sqrt(len(losses))), source


def _blend(oofs: dict[int, np.ndarray], weights: dict[int, float]) -> np.ndarray:
    total = sum(weights.values())
    return sum((oofs[t] * (w / total) for t, w in weights.items()),
               start=np.zeros_like(next(iter(oofs.values())), dtype=float))


def trim_weights(oofs: dict[int, np.ndarray], weights: dict[int, float], y: np.ndarray,
                 metric: Metric, folds: list[tuple[np.ndarray, np.ndarray]],
                 mask: np.ndarray, *, seed: int = 0,
                 families: dict[int, str] | None = None) -> Trim:
    """Drop members of ``weights`` (trial -> weight over ``oofs``, each trial's out-of-fold
    predictions) while the CV loss stays within the noise of the full ensemble's."""
    full = _blend(oofs, weights)
    base = metric.loss(y[mask], full[mask])
    noise, source = cv_noise(full, y, metric, folds, mask, seed)
    kept = dict(weights)
    loss = base
    dropped: list[dict[str, Any]] = []
    while len(kept) > 1:
        # Ties go to the lighter member (then the later trial): deterministic.
        options = []
        for t in sorted(kept, key=lambda t: (kept[t], -t)):
            rest = {u: w for u, w in kept.items() if u != t}
            blended = _blend(oofs, rest)
            options.append((metric.loss(y[mask], blended[mask]), t))
        best_loss, pick = min(options, key=lambda o: o[0])
        if best_loss - base > noise:
            break
        dropped.append({"trial": pick, "family": (families or {}).get(pick, ""),
                        "weight": weights[pick], "cv_after": metric.to_score(best_loss)})
        del kept[pick]
        loss = best_loss
    total = sum(kept.values())
    return Trim(noise=noise, noise_from=source, loss_before=base, loss_after=loss,
                weights={t: w / total for t, w in kept.items()}, dropped=dropped)
