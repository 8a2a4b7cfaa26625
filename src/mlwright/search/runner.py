"""Where trials run: in this process, one after the other (:class:`LocalTrials`, the
default), or on the workers of a cluster (``mlwright.cluster.DaskTrials``).

The search loop (``portfolio._search_loop``) numbers the trials, asks Optuna for their
configurations, starts them on a runner and tells Optuna each result as the runner hands
it back; so the number of trials, their numbers and the refusal of duplicate
configurations are the loop's, wherever the trials ran. A started trial is in the
search's records at once (status ``running``): the cost model and the trial deadlines see
it as tried.
"""

from __future__ import annotations

import abc
from typing import Any

from mlwright.search._base import ModelFamily
from mlwright.search.records import TrialRecord
from mlwright.search.session import _Search

__all__ = ["LocalTrials", "TrialRunner"]


class TrialRunner(abc.ABC):
    """Runs a search's trials; ``slots`` of them at once."""

    slots: int = 1

    def open(self, s: _Search) -> None:  # noqa: B027 (most runners need nothing)
        """Called once before the first trial of ``s``."""

    def close(self, s: _Search) -> None:  # noqa: B027
        """Called once after the search (also when it failed)."""

    @abc.abstractmethod
    def start(self, s: _Search, number: int, family: ModelFamily, params: dict[str, Any],
              target_transform: str | None, trial: Any, *, rows: float = 1.0) -> None:
        """Start trial ``number`` (``trial``: its Optuna trial, told by the loop; ``rows``:
        the share of each fold's training rows it learns from, below 1 for a rung)."""

    @abc.abstractmethod
    def finished(self, s: _Search, *, wait: bool) -> list[tuple[TrialRecord, Any]]:
        """The trials that ended since the last call, as (record, Optuna trial); with
        ``wait``, at least one when any is running."""

    @property
    @abc.abstractmethod
    def running(self) -> int:
        """Trials started and not yet handed back by :meth:`finished`."""


class LocalTrials(TrialRunner):
    """Each trial runs to its end in this process when it is started (its folds in
    parallel threads, see ``_Search.fold_workers``)."""

    def __init__(self) -> None:
        self._done: list[tuple[TrialRecord, Any]] = []

    def start(self, s: _Search, number: int, family: ModelFamily, params: dict[str, Any],
              target_transform: str | None, trial: Any, *, rows: float = 1.0) -> None:
        self._done.append((s.run_trial(number, family, params, target_transform, trial,
                                       rows), trial))

    def finished(self, s: _Search, *, wait: bool) -> list[tuple[TrialRecord, Any]]:
        done, self._done = self._done, []
        return done

    @property
    def running(self) -> int:
        return len(self._done)
