"""``mlwright ui``: the dashboard on its own (``mlwright serve`` also mounts it at /ui)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlwright.cli._common import console
from mlwright.cli.serve import ConfigOpt, DatabaseOpt, _project, _store


def ui(
    model: Annotated[str | None, typer.Argument(
        help="The model to open first (default: the list of every registered model).")
                     ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    require_api_key: Annotated[bool | None, typer.Option(
        "--require-api-key/--no-api-key",
        help="Default: required whenever HOST is not loopback (sign in at /ui/login).")
                               ] = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Serve the dashboard: models, live traffic, drift, live performance, decisions."""
    from mlwright.serve.app import LOOPBACK
    from mlwright.ui.app import run_ui

    project = _project(config)
    store = _store(project)
    console.print(f"Dashboard on http://{host}:{port}/ui (Ctrl+C stops it).")
    if host not in LOOPBACK and require_api_key is not False:
        console.print("API keys are required on this address: sign in at /ui/login with "
                      "one ('mlwright keys create NAME --scope read').")
    run_ui(database or store.database_url(), store.resolved_tracking_uri(), host=host,
           port=port, require_api_key=require_api_key,
           monitor_config=project.monitor if project is not None else None, model=model)


def register(app: typer.Typer) -> None:
    app.command()(ui)
