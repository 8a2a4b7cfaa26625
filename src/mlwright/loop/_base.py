"""Trigger: the extension point that decides when to retrain.

A trigger looks at the world through a :class:`LoopContext` (config, project database, the
loop's state table, a lazily computed monitor result) and answers a :class:`TriggerResult`:
fired or not, a one-line reason, and the evidence that goes to the audit log. ``acknowledge``
is called once a retrain was started for it, so it does not fire again on the same evidence.

Write your own by subclassing :class:`Trigger` and decorating it with
:func:`register_trigger`; ``loop.triggers = ["mine"]`` in the config then uses it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from mlwright._registry import Registry

__all__ = ["TRIGGERS", "LoopContext", "Trigger", "TriggerResult", "build_triggers",
           "register_trigger"]


@dataclass
class TriggerResult:
    name: str
    fired: bool
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.name, "fired": self.fired, "reason": self.reason,
                "evidence": self.evidence}


@dataclass
class LoopContext:
    """What triggers may look at during one pass of the loop."""

    config: Any                                    # mlwright.config.ProjectConfig
    now: float = field(default_factory=time.time)
    champion: Any = None                           # registry.model.LoadedModel or None
    monitor: Callable[[], Any] | None = None       # computes the monitor's result on demand
    _monitor_result: Any = field(default=None, repr=False)
    _monitor_done: bool = field(default=False, repr=False)

    @property
    def name(self) -> str:
        return str(self.config.name)

    @property
    def database_url(self) -> str:
        return str(self.config.store.database_url())

    @property
    def state(self) -> Any:
        from mlwright.loop.state import StateStore

        return StateStore(self.database_url)

    def monitor_result(self) -> Any:
        """The monitor's result for the current window, computed at most once per pass."""
        if not self._monitor_done:
            self._monitor_result = None if self.monitor is None else self.monitor()
            self._monitor_done = True
        return self._monitor_result


class Trigger(ABC):
    """Decides whether to retrain. ``__init__`` only stores parameters."""

    name: ClassVar[str]

    @abstractmethod
    def check(self, ctx: LoopContext) -> TriggerResult:
        """Look, without side effects on the world (state may be initialised)."""

    def acknowledge(self, ctx: LoopContext, result: TriggerResult) -> None:  # noqa: B027
        """A retrain was started because of ``result``; consume what caused it."""

    @classmethod
    def from_config(cls, config: Any) -> Trigger:
        return cls()


TRIGGERS: Registry[Trigger] = Registry(
    "trigger", builtins="mlwright.loop.triggers", register_with="mlwright.loop.register_trigger")
T = TypeVar("T", bound=type[Trigger])


def register_trigger(cls: T) -> T:
    """Class decorator: make a trigger available under ``cls.name`` in ``loop.triggers``."""
    return TRIGGERS.register(cls)


def build_triggers(config: Any) -> list[Trigger]:
    """The triggers ``config.loop.triggers`` names, built from the config."""
    return [TRIGGERS.get(name, setting="loop.triggers").from_config(config)
            for name in config.loop.triggers]
