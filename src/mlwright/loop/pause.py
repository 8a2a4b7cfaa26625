"""Pausing the loop: while a model's loop is paused, a pass (``run_once``) checks nothing
and changes nothing (no trigger, retrain, promotion or rollback) until it is resumed.

The flag lives in the loop's state table (``loop_state``), so a pause set from the
dashboard or another process is seen by a loop running anywhere on the same database; each
pause and resume is written to the audit log with who and why.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["loop_paused", "pause_loop", "resume_loop"]


def _key(name: str) -> str:
    return f"paused.{name}"


def loop_paused(database_url: str, name: str) -> dict[str, Any] | None:
    """The pause of ``name``'s loop ({ts, actor, reason}), or None when it runs."""
    from mlwright.loop.state import StateStore

    found = StateStore(database_url).get(_key(name))
    return found if isinstance(found, dict) else None


def pause_loop(database_url: str, name: str, *, actor: str, reason: str = "") -> int:
    """Pause ``name``'s loop; returns the audit entry's id."""
    from mlwright.loop.state import StateStore
    from mlwright.registry.audit import AuditLog

    StateStore(database_url).set(_key(name), {"ts": time.time(), "actor": actor,
                                              "reason": reason})
    return AuditLog(database_url).record("loop_paused", name, None, actor=actor,
                                         reason=reason or "loop paused")


def resume_loop(database_url: str, name: str, *, actor: str, reason: str = "") -> int:
    """Resume ``name``'s loop; returns the audit entry's id."""
    from mlwright.loop.state import StateStore
    from mlwright.registry.audit import AuditLog

    StateStore(database_url).pop(_key(name))
    return AuditLog(database_url).record("loop_resumed", name, None, actor=actor,
                                         reason=reason or "loop resumed")
