"""Extension point for model families: subclass :class:`ModelFamily`, :func:`register_family`.

A family knows its estimator, its search space (as Optuna suggestions), a few strong default
configurations that are tried first (so that short budgets are good), how to fit with early
stopping against a deadline, and which preprocessing style it wants.
"""

from __future__ import annotations

import abc
import importlib.util
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mlwright._registry import Registry
from mlwright.data.kinds import Task

__all__ = ["FAMILIES", "FitContext", "FitInfo", "ModelFamily", "get_family", "register_family",
           "registered_families"]


@dataclass(frozen=True)
class FitContext:
    """What a family needs to know about the problem to build and fit its estimator."""

    task: Task
    n_classes: int
    n_rows: int
    n_features: int
    n_ordinal: int = 0  # leading block of ordinal-coded categoricals ("tree" style)
    sparse: bool = False
    has_text: bool = False
    seed: int = 0
    n_jobs: int = 1
    class_weight: str | dict[Any, float] | None = None

    @property
    def is_classification(self) -> bool:
        return self.task is not Task.REGRESSION


@dataclass
class FitInfo:
    """What one fit learned about itself (early-stopped iterations, seconds)."""

    n_iter: int | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ModelFamily(abc.ABC):
    """One family of estimators in the zoo. Stateless: every method takes what it needs."""

    name: ClassVar[str]
    #: "tree" or "linear": which preprocessing step (see mlwright.prep) feeds it.
    prep_style: ClassVar[str] = "tree"
    #: The module that must be importable (checked lazily; a missing one hides the family).
    requires: ClassVar[str | None] = None
    #: Rough cost relative to a default LightGBM fit, used before anything is measured.
    relative_cost: ClassVar[float] = 1.0
    #: Tried in portfolio order: lower first.
    priority: ClassVar[int] = 50
    #: Whether ``fit`` stops at its deadline with what it has (boosted rounds, trees,
    #: solver chunks). A family that cannot is never started when it would not finish.
    stops_at_deadline: ClassVar[bool] = True
    #: Whether ``fit`` takes ``sample_weight`` and ``val_weight``: the search then fits
    #: large tables' duplicate rows once each, weighted by their count (see
    #: mlwright.search.duplicate_rows).
    weighted: ClassVar[bool] = False

    def is_available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    def supports(self, ctx: FitContext) -> bool:
        """Whether the family is worth trying on this problem at all."""
        return self.why_unsupported(ctx) is None

    def why_unsupported(self, ctx: FitContext) -> str | None:
        """Why the family is not tried on this problem (None: it is), said in the
        leaderboard and the run's output. A family overriding only :meth:`supports` gets a
        generic reason."""
        return None

    def cost(self, ctx: FitContext) -> float:
        """Expected cost relative to a default LightGBM fit on the same problem."""
        return self.relative_cost

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        """Strong configurations to try before searching, as points of :meth:`suggest`."""
        return []

    def grid_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        """Configurations for ``search="grid"`` (by default: the defaults)."""
        return self.default_configs(ctx)

    @abc.abstractmethod
    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        """Draw parameters from ``trial`` (an ``optuna.Trial``); names must be unique."""

    @abc.abstractmethod
    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        """An unfitted scikit-learn estimator for ``params``."""

    def fit(self, estimator: Any, X: Any, y: np.ndarray, ctx: FitContext, *,
            X_val: Any = None, y_val: np.ndarray | None = None,
            deadline: float | None = None) -> FitInfo:
        """Fit ``estimator``; families with early stopping use the validation data.

        A family that sets ``weighted`` also takes ``sample_weight`` (of the rows of ``X``)
        and ``val_weight`` (of ``X_val``'s) as keywords, None when every row counts once.
        """
        estimator.fit(X, y)
        return FitInfo()

    def refit_params(self, params: dict[str, Any], infos: list[FitInfo],
                     ctx: FitContext) -> dict[str, Any]:
        """Parameters for the final fit on all rows (e.g. iterations found by early stopping)."""
        return params


FAMILIES: Registry[ModelFamily] = Registry(
    "model family", builtins="mlwright.search.families",
    register_with="mlwright.search._base.register_family")


def register_family(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: make a family available under ``cls.name`` (``models = [...]``)."""
    return FAMILIES.register(cls)


def registered_families() -> dict[str, type[ModelFamily]]:
    """Every family by name, in registration order."""
    return {cls.name: cls for cls in FAMILIES.classes()}


def get_family(name: str) -> ModelFamily:
    return FAMILIES.get(name)()
