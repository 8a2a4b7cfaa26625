"""Retrain a registered version with its recorded config and seed, and compare the metrics.

The training itself is passed in (``mlwright.api.reproduce`` passes ``mw.train``): the one
definition of how a table becomes a model lives above the registry, and a copy of it here
would drift from what the recorded score was measured with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mlwright.exceptions import RegistryError
from mlwright.run import TrainResult

__all__ = ["Reproduction", "reproduce"]

# The arguments of mlwright.train that the registry records (train_params) and replays.
_TRAIN_ARGS = ("time_budget", "metric", "task", "seed", "n_trials", "search", "families", "cv",
               "groups", "time", "class_weight", "threshold", "trim", "distill",
               "max_latency_ms", "max_size_mb")


@dataclass
class Reproduction:
    ref: str
    metric: str
    recorded: float
    reproduced: float
    tolerance: float
    recorded_fingerprint: str | None
    data_fingerprint: str | None
    train_args: dict[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> float:
        return abs(self.reproduced - self.recorded)

    @property
    def matches(self) -> bool:
        return self.difference <= self.tolerance

    @property
    def same_data(self) -> bool:
        return bool(self.recorded_fingerprint) and (
            self.recorded_fingerprint == self.data_fingerprint)

    @property
    def deterministic(self) -> bool:
        """Only a trial-limited search replays exactly; a time budget depends on the load."""
        return self.train_args.get("n_trials") is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "difference": self.difference, "matches": self.matches,
                "same_data": self.same_data, "deterministic": self.deterministic}


def reproduce(ref: str, data: Any, *, train: Callable[..., TrainResult],
              tracking_uri: str | None = None, tolerance: float = 0.01,
              time_budget: float | None = None, registry: Any = None) -> Reproduction:
    """Retrain ``ref`` on ``data`` (a DataFrame or anything ``mw.load`` reads) with
    ``train(data, target, **recorded_arguments)``; ``matches`` says whether the CV score is
    within ``tolerance`` (absolute) of the recorded one."""
    import json

    from mlwright.registry.core import Registry

    reg = registry or Registry(tracking_uri)
    info = reg.show(ref)
    raw = info.tags.get("mlwright.train_params")
    target = info.tags.get("mlwright.target")
    if not raw or not target or info.cv_score is None:
        raise RegistryError(
            f"{info.ref} has no recorded training arguments (tags mlwright.train_params and "
            f"mlwright.target); only versions registered by 'mlwright train' can be "
            f"reproduced.")
    recorded = json.loads(raw)
    args = {k: recorded[k] for k in _TRAIN_ARGS if k in recorded}
    if time_budget is not None:
        args["time_budget"] = time_budget
    result = train(data, target, **args)
    return Reproduction(
        ref=info.ref, metric=str(info.metric), recorded=float(info.cv_score),
        reproduced=float(result.cv_score), tolerance=tolerance,
        recorded_fingerprint=info.data_fingerprint,
        data_fingerprint=getattr(result.contract, "fingerprint", None), train_args=args)
