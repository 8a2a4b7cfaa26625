"""What a search leaves behind: one TrialRecord per trial, the SearchResult, and the
leaderboard built from them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.kinds import ColumnKind, Task
from mlwright.scoring import Metric
from mlwright.search._base import FitInfo
from mlwright.search.ensemble import Ensemble

__all__ = ["SearchResult", "TrialRecord", "leaderboard"]


@dataclass
class TrialRecord:
    number: int
    family: str
    params: dict[str, Any]
    style: str
    target_transform: str | None = None
    status: str = "running"  # complete, pruned, timeout, failed, skipped
    loss: float = math.inf
    fold_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    fold_seconds: list[float] = field(default_factory=list)
    infos: list[FitInfo] = field(default_factory=list)
    # Out-of-fold predictions, read and set as ``oof``; where duplicate rows were validated
    # once each, one row per distinct row and, in ``_oof_of``, each validated row's.
    _oof: np.ndarray | None = field(default=None, repr=False)
    _oof_of: np.ndarray | None = field(default=None, repr=False)
    covered: np.ndarray | None = None  # rows with an out-of-fold prediction ("partial")
    estimator: Any = None  # the fitted model, kept in holdout mode (no refit there)
    # The k fold models (k-fold CV, best trials only): what the CV scored, shipped as a
    # bagged member when the refit on all rows cannot finish within the budget.
    fold_models: list[Any] | None = None
    error: str | None = None
    finished_at: float = 0.0
    worker: str | None = None  # the Dask worker that ran it (mlwright.cluster), else None
    # The share of each fold's training rows its models learned from: below 1 for a rung,
    # the first trials of a family that cannot stop at a deadline (see _Search.first_rung).
    rows: float = 1.0
    # When the trial had to stop, in seconds since the run started (None: no deadline, as
    # with a number of trials); never past the run's budget.
    deadline: float | None = None

    @property
    def oof(self) -> np.ndarray | None:
        """Out-of-fold predictions of the search's validated rows, in row order (every row
        with k-fold CV; SearchResult.trial_oof spreads them over the table's rows)."""
        if self._oof is None or self._oof_of is None:
            return self._oof
        return self._oof[self._oof_of]

    @oof.setter
    def oof(self, value: np.ndarray | None) -> None:
        self._oof, self._oof_of = value, None

    def keep_oof(self, oof: np.ndarray, groups: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Keep ``oof`` (the validated rows'), once per group of ``groups`` = (each validated
        row's group, each group's first row) when given: a large table's duplicate rows
        share one prediction (military's 212 k validated rows, 4 classes: 6.5 MB a trial
        kept as 1,000-odd rows)."""
        if groups is None:
            self.oof = oof
        else:
            of_row, first = groups
            self._oof, self._oof_of = oof[first], of_row


@dataclass
class SearchResult:
    model: Ensemble
    task: Task
    metric: Metric
    trials: list[TrialRecord]
    weights: dict[int, float]
    oof: np.ndarray
    oof_mask: np.ndarray
    y_encoded: np.ndarray
    classes: list[Any] | None
    cv_loss: float
    fold_losses: list[float]
    splits_kind: str
    timings: dict[str, float]
    history: list[tuple[float, float]]  # (seconds since start, best loss so far)
    kinds: dict[str, ColumnKind]
    trim: Any = None  # search.trim.Trim when --trim ran
    student: Any = None  # search.distill.Student when --distill ran
    limits: Any = None  # search.limits.Limited with --max-latency-ms / --max-size-mb
    #: Allowed families without a trial, and why (not suited to the table, or no time).
    not_run: dict[str, str] = field(default_factory=dict)
    #: The rows each trial's ``oof`` holds, in its order (None: every row).
    validated: np.ndarray | None = None

    def trial_oof(self, record: TrialRecord) -> np.ndarray:
        """``record``'s out-of-fold predictions on every row (0 where not validated)."""
        if record.oof is None:
            raise ValueError(f"trial {record.number} kept no out-of-fold predictions")
        if self.validated is None:
            return record.oof
        return on_every_row(record.oof, self.validated, len(self.y_encoded))

    @property
    def cv_score(self) -> float:
        return self.metric.to_score(self.cv_loss)

    @property
    def cv_scores(self) -> list[float]:
        return [self.metric.to_score(v) for v in self.fold_losses]

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard(self.trials, self.metric, self.weights, self.not_run)


def leaderboard(trials: list[TrialRecord], metric: Metric,
                weights: dict[int, float] | None = None,
                not_run: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per trial that ran, best first, in the metric's own units; ``rows`` is the
    share of the training rows its models learned from (a rung below 1). Then one row per
    allowed family that had no trial (status ``not run``, trial -1), ``note`` says why."""
    weights = weights or {}
    rows = []
    for t in trials:
        if t.status == "skipped":
            continue
        scores = [metric.to_score(v) for v in t.fold_losses]
        rows.append({
            "trial": t.number, "family": t.family, "status": t.status,
            metric.name: metric.to_score(t.loss) if math.isfinite(t.loss) else np.nan,
            "std": float(np.std(scores)) if len(scores) > 1 else np.nan,
            "seconds": round(t.seconds, 2),
            "weight": round(weights.get(t.number, 0.0), 3),
            "target": t.target_transform or "",
            "params": _short_params(t.params),
            "rows": round(t.rows, 4),
            "note": (f"rung: {t.rows:.0%} of each fold's training rows" if t.rows < 1
                     else ""),
        })
    board = pd.DataFrame(rows)
    if not board.empty:
        board = board.sort_values(metric.name, ascending=not metric.greater_is_better,
                                  na_position="last", kind="stable")
    missing = pd.DataFrame([{"trial": -1, "family": name, "status": "not run",
                             metric.name: np.nan, "std": np.nan, "seconds": 0.0,
                             "weight": 0.0, "target": "", "params": "", "rows": 0.0,
                             "note": why} for name, why in (not_run or {}).items()])
    if not missing.empty:
        board = missing if board.empty else pd.concat([board, missing], ignore_index=True)
    return board.reset_index(drop=True)


def _short_params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def on_every_row(oof: np.ndarray, validated: np.ndarray, n_rows: int) -> np.ndarray:
    """Out-of-fold predictions of the ``validated`` rows spread over all ``n_rows`` rows (0
    where a row was not validated)."""
    out = np.zeros((n_rows, *oof.shape[1:]))
    out[validated] = oof
    return out
