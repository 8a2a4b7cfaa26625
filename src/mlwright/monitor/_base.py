"""The drift-detector extension point: a :class:`Detector` compares one column's window with
its reference and says whether it drifted.

A detector is either a statistical test (``kind = "test"``: drift when the p-value is below
the threshold, corrected for the number of columns tested together) or a distance
(``kind = "distance"``: drift when the distance exceeds the threshold). Register new ones
with :func:`register_detector`; :func:`get_detector` finds them by name (config values such
as ``monitor.numeric_detector = "psi"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from mlwright._json import finite
from mlwright._registry import Registry
from mlwright.exceptions import ConfigError

__all__ = ["DETECTORS", "ColumnReference", "ColumnWindow", "Detector", "DetectorResult",
           "detector_names", "get_detector", "register_detector"]

ColumnType = Literal["numeric", "categorical"]


@dataclass
class ColumnReference:
    """What a column looked like in training.

    Numeric columns carry ``values`` (sorted finite values of a reference sample) when one is
    available, and always the contract's quantile sketch and equal-frequency histogram;
    categorical columns carry ``counts`` (value key -> rows).
    """

    name: str
    type: ColumnType
    n: int                                   # non-missing reference values
    missing_rate: float = 0.0
    values: np.ndarray | None = None         # numeric: sorted reference sample
    quantile_probs: np.ndarray | None = None
    quantiles: np.ndarray | None = None
    bin_edges: np.ndarray | None = None
    bin_counts: np.ndarray | None = None
    std: float | None = None
    counts: dict[str, int] = field(default_factory=dict)  # categorical
    other_count: int = 0                     # reference rows outside the listed values
    closed: bool = False                     # the listed values are all that training saw


@dataclass
class ColumnWindow:
    """One column of the current window: finite numbers, or counts by value key."""

    name: str
    type: ColumnType
    n: int                                   # non-missing values
    n_missing: int = 0
    values: np.ndarray | None = None         # numeric
    counts: dict[str, int] = field(default_factory=dict)  # categorical


@dataclass
class DetectorResult:
    """The verdict of one detector on one column."""

    detector: str
    kind: Literal["test", "distance"]
    statistic: float                         # the test statistic, or the distance
    threshold: float                         # p-value level, or distance limit
    drifted: bool
    p_value: float | None = None             # tests only (before correction)
    p_adjusted: float | None = None          # after the multiple-comparison correction

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "kind": self.kind,
                "statistic": finite(self.statistic), "p_value": finite(self.p_value),
                "p_adjusted": finite(self.p_adjusted), "threshold": self.threshold,
                "drifted": self.drifted}


class Detector(ABC):
    """Compare a window with its reference. Subclasses set ``name``, ``kind`` and
    ``default_threshold`` and implement :meth:`applies_to` and :meth:`statistic`."""

    name: ClassVar[str]
    kind: ClassVar[Literal["test", "distance"]]
    default_threshold: ClassVar[float]

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold

    @abstractmethod
    def applies_to(self, column_type: ColumnType) -> bool:
        """Whether this detector can compare columns of this type."""

    @abstractmethod
    def statistic(self, reference: ColumnReference, current: ColumnWindow
                  ) -> tuple[float, float | None]:
        """(statistic or distance, p-value or None)."""

    def score(self, reference: ColumnReference, current: ColumnWindow) -> DetectorResult:
        if not self.applies_to(reference.type):
            raise ConfigError(
                f"The drift detector {self.name!r} does not compare {reference.type} columns "
                f"(column {reference.name!r}); choose one of "
                f"{detector_names(reference.type)}.")
        threshold = self.default_threshold if self.threshold is None else self.threshold
        stat, p = self.statistic(reference, current)
        if self.kind == "test":
            drifted = p is not None and bool(p < threshold)
        else:
            drifted = bool(np.isfinite(stat) and stat > threshold)
        return DetectorResult(self.name, self.kind, float(stat), float(threshold), drifted,
                              p_value=p)


DETECTORS: Registry[Detector] = Registry(
    "drift detector", builtins="mlwright.monitor.detectors",
    register_with="mlwright.monitor.register_detector")


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make ``cls`` available by its ``name``."""
    return DETECTORS.register(cls)


def get_detector(name: str, threshold: float | None = None) -> Detector:
    return DETECTORS.get(name)(threshold)


def detector_names(column_type: ColumnType | None = None) -> list[str]:
    return [n for n in DETECTORS.names()
            if column_type is None or DETECTORS.get(n)().applies_to(column_type)]
