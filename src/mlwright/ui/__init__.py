"""ui stage: the dashboard (``mlwright ui``, and ``/ui`` on ``mlwright serve``): server-
rendered pages over the registry, the monitor's window history and the loop, with promote,
rollback and pausing the loop for admin keys (see docs/architecture.md)."""

from __future__ import annotations

from mlwright.ui.app import PREFIX, create_ui_app, mount, run_ui, ui_router

__all__ = ["PREFIX", "create_ui_app", "mount", "run_ui", "ui_router"]
