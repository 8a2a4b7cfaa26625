"""The FastAPI application: ``create_app(model, ...)`` and ``run_server(...)``.

Wiring only. The server's state is one object (``serve/state.py``, on ``app.state.server``),
each concern's routes are one ``APIRouter`` (``serve/routes/``), and each cross-cutting
concern is one pure-ASGI middleware (``serve/middleware/``). The hot path
(``POST /v1/predict``) reads the raw body with orjson, checks the records with the compiled
:class:`~mlwright.serve.records.RecordValidator` and answers through the micro-batcher:
no pydantic model and no pandas per request.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI

from mlwright.config import ProjectConfig, ServeConfig, StoreConfig
from mlwright.exceptions import ServingError
from mlwright.serve.middleware import MIDDLEWARE
from mlwright.serve.prometheus import MULTIPROC_ENV, worker_exited
from mlwright.serve.routes import ROUTERS, contract_openapi
from mlwright.serve.state import ServerState, settle_heap

__all__ = ["LOOPBACK", "ServeContext", "create_app", "http_protocol", "run_server"]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class ServeContext:
    """What an extension (``create_app(extensions=["module:function"])``) may use.

    Later stages (monitoring's ``GET /v1/monitor``, the loop's retrain webhook) add their
    routes through extensions named by import path, so ``serve/`` never imports them and
    worker processes (``--workers``) can rebuild the same app from strings.
    """

    database_url: str
    model_name: str
    champion_folder: Callable[[], str]   # the answering champion's run folder (hot swaps)
    metrics_registry: Any                # prometheus CollectorRegistry behind GET /metrics
    project: Any = None                  # the ProjectConfig, when served from one
    tracking_uri: str | None = None      # the registry the server follows
    open_paths: set[str] = field(default_factory=set)  # served without an API key


def _load_extension(path: str) -> Callable[[FastAPI, ServeContext], None]:
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name or "mount")
    except (ImportError, AttributeError) as exc:
        raise ServingError(f"Cannot load the server extension {path!r}: {exc}. Expected "
                           f"'package.module:function'.") from exc


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    server: ServerState = app.state.server
    await server.start()
    try:
        yield
    finally:
        await server.stop()
        worker_exited()


def create_app(model: Any, *, challenger: Any = None, config: ServeConfig | None = None,
               database_url: str | None = None, tracking_uri: str | None = None,
               host: str | None = None, require_api_key: bool | None = None,
               poll_interval: float = 1.0, extensions: Sequence[str] = (),
               project: Any = None) -> FastAPI:
    """The REST API for ``model``: a run folder, a registry reference (``NAME@champion``,
    followed when the alias moves) or a ``LoadedModel``.

    ``challenger`` (same forms) answers ``config.challenger_share`` of requests and, with
    ``config.shadow``, predicts on every request without answering. With a registry reference
    ``NAME@alias`` and a share or shadow set, ``NAME@challenger`` is followed by default.
    API keys are required when ``require_api_key`` (default ``config.require_api_key``, else
    whenever ``host`` is not loopback). ``extensions`` are ``"module:function"`` paths, each
    called with ``(app, ServeContext)`` to add routes (behind the same API-key guard).
    """
    config = config or ServeConfig.model_validate({})
    if require_api_key is None:
        require_api_key = config.require_api_key
    if require_api_key is None:
        require_api_key = (host or config.host) not in LOOPBACK
    server = ServerState(model, challenger=challenger, config=config,
                         database_url=database_url or StoreConfig.model_validate({}).database_url(),
                         tracking_uri=tracking_uri, require_key=require_api_key,
                         poll_interval=poll_interval)
    active = server.champion.active
    assert active is not None
    app = FastAPI(title=f"mlwright: {active.name}", version=active.version,
                  description="Predictions validated against the model's data contract.",
                  lifespan=_lifespan,
                  # /docs is served from the package (routes/docs.py), not from a CDN.
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    app.state.server = server
    if config.cors_origins:  # innermost: its answers still pass keys, limits and metrics
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    for middleware in reversed(MIDDLEWARE):  # each one added becomes the outermost
        app.add_middleware(middleware, state=server)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = functools.partial(contract_openapi, app)  # type: ignore[method-assign]
    if extensions:
        context = ServeContext(server.database_url, active.name, server.champion_folder,
                               server.metrics.registry, project, server.tracking_uri,
                               server.open_paths)
        for path in extensions:
            _load_extension(path)(app, context)
    return app


def run_server(model: str, *, challenger: str | None = None, config: ServeConfig | None = None,
               database_url: str | None = None, tracking_uri: str | None = None,
               host: str | None = None, port: int | None = None, workers: int | None = None,
               require_api_key: bool | None = None, extensions: Sequence[str] = (),
               project: Any = None) -> None:
    """Serve ``model`` with uvicorn until SIGINT/SIGTERM (then drain and flush the log)."""
    import uvicorn

    config = config or ServeConfig.model_validate({})
    host = host or config.host
    port = config.port if port is None else port
    workers = workers or config.workers
    options: dict[str, Any] = {"host": host, "port": port, "access_log": False,
                               "log_level": "warning", "loop": "auto",
                               "http": http_protocol(config, workers),
                               # SIGTERM: in-flight requests get this long, then the
                               # lifespan's shutdown flushes the prediction log.
                               "timeout_graceful_shutdown": config.shutdown_grace_s}
    if workers > 1:
        # Each worker process builds its own app from this spec (uvicorn needs an import path).
        os.environ["MLWRIGHT_SERVE_SPEC"] = orjson.dumps({
            "model": model, "challenger": challenger, "config": config.model_dump(mode="json"),
            "database_url": database_url, "tracking_uri": tracking_uri, "host": host,
            "require_api_key": require_api_key, "extensions": list(extensions),
            "project": None if project is None else project.model_dump(mode="json")}).decode()
        import shutil
        import tempfile

        # Set before the workers start (and import prometheus-client): their metrics go to
        # files that GET /metrics merges. A folder a user named is theirs to keep.
        own = MULTIPROC_ENV not in os.environ
        folder = os.environ.setdefault(MULTIPROC_ENV,
                                       tempfile.mkdtemp(prefix="mlwright-metrics-"))
        try:
            uvicorn.run("mlwright.serve.app:app_from_environment", factory=True,
                        workers=workers, **options)
        finally:
            if own:
                shutil.rmtree(folder, ignore_errors=True)
                del os.environ[MULTIPROC_ENV]
        return
    app = create_app(model, challenger=challenger, config=config, database_url=database_url,
                     tracking_uri=tracking_uri, host=host, require_api_key=require_api_key,
                     extensions=extensions, project=project)
    settle_heap()
    uvicorn.Server(uvicorn.Config(app, **options)).run()


def http_protocol(config: ServeConfig, workers: int = 1) -> Any:
    """uvicorn's ``http`` option: its httptools protocol with serve.header_timeout_s
    (serve/connections.py), or uvicorn's choice where httptools is not installed."""
    try:
        from mlwright.serve.connections import protocol_for
    except ImportError:
        return "auto"
    if workers > 1:  # each worker process builds the class from the spec in its environment
        return "mlwright.serve.connections:from_environment"
    return protocol_for(config.header_timeout_s)


def app_from_environment() -> FastAPI:
    """The app factory of each worker process (``--workers N``)."""
    spec = orjson.loads(os.environ["MLWRIGHT_SERVE_SPEC"])
    app = create_app(spec["model"], challenger=spec["challenger"],
                     config=ServeConfig(**spec["config"]), database_url=spec["database_url"],
                     tracking_uri=spec["tracking_uri"], host=spec["host"],
                     require_api_key=spec["require_api_key"], extensions=spec["extensions"],
                     project=None if spec["project"] is None else ProjectConfig.model_validate(
                         spec["project"]))
    settle_heap()
    return app
