"""loop stage: triggers, retraining in a worker process, challenger against champion,
promotion and rollback, every decision audited (see docs/architecture.md)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# compare is both a module and the public function; bind the function eagerly so that
# ``mlwright.loop.compare`` is always the function (the module stays importable by path).
from mlwright.loop.compare import Comparison, Decision, compare, decide

_LAZY = {
    "Trigger": "mlwright.loop._base",
    "TriggerResult": "mlwright.loop._base",
    "LoopContext": "mlwright.loop._base",
    "register_trigger": "mlwright.loop._base",
    "build_triggers": "mlwright.loop._base",
    "request_retrain": "mlwright.loop.triggers",
    "retrain": "mlwright.loop.jobs",
    "start_retrain": "mlwright.loop.jobs",
    "RetrainJob": "mlwright.loop.jobs",
    "RetrainResult": "mlwright.loop.jobs",
    "prepare_data": "mlwright.loop.holdout",
    "labelled_rows": "mlwright.loop.feedback",
    "run_once": "mlwright.loop.runner",
    "check_rollback": "mlwright.loop.runner",
    "evaluate_challenger": "mlwright.loop.runner",
    "PassResult": "mlwright.loop.runner",
    "hooks_router": "mlwright.loop.routes",
    "pause_loop": "mlwright.loop.pause",
    "resume_loop": "mlwright.loop.pause",
    "loop_paused": "mlwright.loop.pause",
}

__all__ = sorted(["Comparison", "Decision", "compare", "decide", *_LAZY])

if TYPE_CHECKING:
    from mlwright.loop._base import (
        LoopContext,
        Trigger,
        TriggerResult,
        build_triggers,
        register_trigger,
    )
    from mlwright.loop.feedback import labelled_rows
    from mlwright.loop.holdout import prepare_data
    from mlwright.loop.jobs import RetrainJob, RetrainResult, retrain, start_retrain
    from mlwright.loop.pause import loop_paused, pause_loop, resume_loop
    from mlwright.loop.routes import hooks_router
    from mlwright.loop.runner import PassResult, check_rollback, evaluate_challenger, run_once
    from mlwright.loop.triggers import request_retrain


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwright.loop' has no attribute {name!r}")
