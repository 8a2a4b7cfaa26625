"""``mlwright serve`` and ``mlwright keys``: the REST API (issue 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlwright.cli._common import StoreOpt, console

keys_app = typer.Typer(help="API keys of the server (only their hashes are stored).",
                       no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="mlwright.toml to read \\[serve] and \\[store] from (default: "
    "./mlwright.toml when it exists).")]
#: The dashboard, mounted at /ui by ``mlwright serve`` (a later stage than the loop: named
#: here, by import path, as every server extension is).
UI_EXTENSION = "mlwright.ui.app:mount"

DatabaseOpt = Annotated[str | None, typer.Option(
    "--database", help="SQLAlchemy URL of the project database (default: store.database).")]


def _project(config: Path | None) -> Any:
    from mlwright.config import CONFIG_FILE, load_config

    if config is not None:
        return load_config(config)
    if Path(CONFIG_FILE).exists():
        return load_config(CONFIG_FILE)
    return None


def _store(project: Any, store: str | None = None) -> Any:
    from mlwright.config import StoreConfig

    base = project.store if project is not None else StoreConfig.model_validate({})
    return base.with_option(store)


def serve(
    model: Annotated[str, typer.Argument(
        help="NAME@champion (a registry alias, followed when it moves), NAME/VERSION, or a "
        "run folder written by 'mlwright train'.")],
    host: Annotated[str | None, typer.Option(help="Address to bind (default serve.host).")
                    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    challenger: Annotated[str | None, typer.Option(
        help="The challenger (same forms as MODEL); default NAME@challenger when MODEL is an "
        "alias and a share or shadow is set.")] = None,
    share: Annotated[float | None, typer.Option(
        min=0, max=1, help="A/B: share of requests the challenger answers.")] = None,
    shadow: Annotated[bool | None, typer.Option(
        "--shadow/--no-shadow", help="The challenger predicts on every request, logged only.")
                      ] = None,
    require_api_key: Annotated[bool | None, typer.Option(
        "--require-api-key/--no-api-key",
        help="Default: required whenever HOST is not loopback.")] = None,
    runtime: Annotated[str | None, typer.Option(
        "--runtime", help="python (the compiled predictor) or onnx (the model's ONNX "
        "export run by onnxruntime: the one 'mlwright export' logged, else exported now "
        "with its parity check). Default serve.runtime.")] = None,
    max_batch_rows: Annotated[int | None, typer.Option(
        "--max-batch-rows", min=0, help="Micro-batching: requests that queue while the model "
        "is busy go to it in one call of up to this many rows (a lone request never waits "
        "for company); 0 or 1 turns it off. Default serve.max_batch (1024).")] = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    store_option: StoreOpt = None,
) -> None:
    """Serve a model over HTTP: predict, batch, explain, feedback, monitor, metrics, and the
    dashboard at /ui."""
    from mlwright.loop.service import SERVER_EXTENSIONS
    from mlwright.serve.app import LOOPBACK, run_server

    project = _project(config)
    serve_config = project.serve.model_copy() if project is not None else None
    if serve_config is None:
        from mlwright.config import ServeConfig

        serve_config = ServeConfig.model_validate({})
    if share is not None:
        serve_config.challenger_share = share
    if shadow is not None:
        serve_config.shadow = shadow
    if max_batch_rows is not None:
        serve_config.max_batch = max_batch_rows
    if runtime is not None:
        if runtime not in ("python", "onnx"):
            from mlwright.exceptions import ConfigError

            raise ConfigError(f"--runtime {runtime!r}: expected python or onnx.")
        serve_config.runtime = runtime
    store = _store(project, store_option)
    bind = host or serve_config.host
    shown_port = serve_config.port if port is None else port
    console.print(f"Serving [bold]{model}[/] on http://{bind}:{shown_port} "
                  f"(docs at /docs, dashboard at /ui, metrics at /metrics); Ctrl+C or SIGTERM "
                  f"stops it after answering in-flight requests and flushing the prediction "
                  f"log.")
    if bind not in LOOPBACK and require_api_key is not False:
        console.print("API keys are required on this address ('mlwright keys create NAME').")
    run_server(model, challenger=challenger, config=serve_config,
               database_url=database or store.database_url(),
               tracking_uri=store.resolved_tracking_uri(), host=host, port=port,
               workers=workers, require_api_key=require_api_key,
               extensions=(*SERVER_EXTENSIONS, UI_EXTENSION), project=project)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. 'dashboard'.")],
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", "-s", help="What the key may call, repeated: predict (predict, batch, "
        "explain), feedback, read (GET model, monitor, metrics), admin (the retrain webhook "
        "and anything else that changes state; grants every scope). Default: every scope.")
                     ] = None,
    rate: Annotated[str | None, typer.Option(
        help="The key's rate limit, e.g. 100/second or '1000 per hour' (429 past it), or "
        "'unlimited'. Default: serve.rate_limit (none unless set).")] = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    store: StoreOpt = None,
) -> None:
    """Create an API key; it is shown once, only its hash is stored."""
    from mlwright.serve.keys import SCOPES, create_key

    url = database or _store(_project(config), store).database_url()
    key_id, key = create_key(url, name, scopes=scope or None, rate=rate)
    scopes = " ".join(s for s in SCOPES if s in {x.strip().lower() for x in scope}) \
        if scope else "every scope"
    console.print(f"Created key [bold]{key_id}[/] ({name}; {scopes}; rate "
                  f"{rate or 'serve.rate_limit'}). Keep it now; it cannot be shown again:")
    console.print(key, highlight=False, soft_wrap=True)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id (or name: every key with it).")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    store: StoreOpt = None,
) -> None:
    """Revoke an API key (servers stop accepting it within seconds)."""
    from mlwright.serve.keys import revoke_key

    url = database or _store(_project(config), store).database_url()
    count = revoke_key(url, key)
    console.print(f"Revoked {count} key{'s' if count != 1 else ''} matching {key!r}.")


@keys_app.command("list")
def keys_list(config: ConfigOpt = None, database: DatabaseOpt = None,
              store: StoreOpt = None) -> None:
    """List API keys (ids, names, scopes, rate limits, dates; never the keys)."""
    from datetime import UTC, datetime

    from rich.table import Table

    from mlwright.serve.keys import list_keys

    project = _project(config)
    url = database or _store(project, store).database_url()
    default = project.serve.rate_limit if project is not None else None
    table = Table(title="API keys", title_justify="left")
    for col in ("id", "name", "scopes", "rate", "created", "revoked"):
        table.add_column(col)

    def stamp(value: float | None) -> str:
        return "" if value is None else datetime.fromtimestamp(value, UTC).strftime(
            "%Y-%m-%d %H:%M UTC")

    for row in list_keys(url):
        table.add_row(row["id"], row["name"], " ".join(row["scopes"]),
                      row["rate"] or f"default ({default or 'none'})", stamp(row["created"]),
                      stamp(row["revoked"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(keys_app, name="keys")
