"""The FastAPI application: ``create_app(model, ...)`` and ``run_server(...)``.

The hot path (``POST /v1/predict``) reads the raw body, parses it with orjson, checks the
records with the compiled :class:`~mlwright.serve.records.RecordValidator`, hands them to
the micro-batcher and answers with orjson bytes: no pydantic model and no pandas per
request. Schemas for the OpenAPI document come from the contract (``serve/schema.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from mlwright._logging import get_logger
from mlwright.config import ProjectConfig, ServeConfig, StoreConfig
from mlwright.exceptions import MlwrightError, ServingError
from mlwright.serve import schema as _schema
from mlwright.serve.keys import active_hashes, hash_key
from mlwright.serve.logwriter import FeedbackEntry, LogWriter, PredictionEntry
from mlwright.serve.metrics import MULTIPROC_ENV, ServerMetrics, exposition, worker_exited
from mlwright.serve.records import Issue, RecordValidator
from mlwright.serve.runtime import (
    Active,
    MicroBatcher,
    Router,
    Slot,
    is_registry_ref,
    load_source,
    make_predictor,
    resolve,
)
from mlwright.store import open_database

__all__ = ["LOOPBACK", "ServeContext", "create_app", "run_server"]

log = get_logger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_OPEN_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect",
               "/redoc"}
_ENDPOINTS = {"/v1/predict", "/v1/predict/batch", "/v1/explain", "/v1/model", "/v1/feedback",
              "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
_MAX_SHOWN_ISSUES = 50
_BATCH_CHUNK = 10_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _BadRequest(Exception):
    """Bad input found by a handler: answered with ``status`` and a JSON error body."""

    def __init__(self, status: int, detail: str, errors: list[Issue] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_response(value: Any, status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(value), status_code=status, media_type="application/json",
                    headers=headers)


def _error_body(detail: str, errors: list[Issue] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = [e.to_dict() for e in errors[:_MAX_SHOWN_ISSUES]]
    return body


class _Guard:
    """Pure ASGI middleware: body size limit, API keys, metrics, and no traceback leaks."""

    def __init__(self, app: Any, server: _Server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = self.server
        started = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in _ENDPOINTS else "other"
        status_box = [500]
        started_response = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                started_response[0] = True
            await send(message)

        async def reply(status: int, body: dict[str, Any]) -> None:
            await send_wrapper({"type": "http.response.start", "status": status,
                                "headers": [(b"content-type", b"application/json")]})
            await send_wrapper({"type": "http.response.body", "body": _dumps(body)})

        try:
            headers = dict(scope["headers"])
            if server.require_key and path not in _OPEN_PATHS:
                key = headers.get(b"x-api-key")
                if key is None:
                    auth = headers.get(b"authorization", b"")
                    if auth[:7].lower() == b"bearer ":
                        key = auth[7:].strip()
                if not key or hash_key(key.decode("latin-1")) not in server.key_hashes:
                    server.metrics.errors.labels(endpoint, "auth").inc()
                    await reply(401, {"detail": "A valid API key is required: send it as "
                                      "'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
                                      "(create one with 'mlwright keys create NAME')."})
                    return
            limit = server.max_body
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    too_big = int(length) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    server.metrics.errors.labels(endpoint, "too_large").inc()
                    await reply(413, {"detail": f"The request body is {int(length):,} bytes; "
                                      f"the limit is {limit:,} (serve.max_body_mb)."})
                    return
            received = [0]

            async def receive_limited() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > limit:
                        raise _TooLarge
                return message

            await self.app(scope, receive_limited, send_wrapper)
        except _TooLarge:
            server.metrics.errors.labels(endpoint, "too_large").inc()
            if not started_response[0]:
                await reply(413, {"detail": f"The request body is over the limit of "
                                  f"{server.max_body:,} bytes (serve.max_body_mb)."})
        except Exception:
            log.exception("unexpected error on %s", path)
            server.metrics.errors.labels(endpoint, "internal").inc()
            if not started_response[0]:
                await reply(500, {"detail": "Internal error; see the server log."})
        finally:
            server.metrics.requests.labels(endpoint, str(status_box[0])).inc()
            server.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


def _one_thread_kernels() -> None:
    """One OpenMP / BLAS thread for the calling thread's model calls. A server spreads
    requests over its cores already; a kernel's own thread team on a busy machine waits at
    its barriers (a one-row kNN prediction: 100 ms instead of 1 ms). OpenMP's setting is
    per thread, so each thread that predicts calls this."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


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


def _load_extension(path: str) -> Callable[[FastAPI, ServeContext], None]:
    import importlib

    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name or "mount")
    except (ImportError, AttributeError) as exc:
        raise ServingError(f"Cannot load the server extension {path!r}: {exc}. Expected "
                           f"'package.module:function'.") from exc


class _Server:
    """Everything one app holds: slots, batchers, the log, keys, settings."""

    def __init__(self, champion: Any, *, challenger: Any, config: ServeConfig,
                 database_url: str, tracking_uri: str | None, require_key: bool,
                 poll_interval: float) -> None:
        self.config = config
        self.tracking_uri = tracking_uri
        self.poll_interval = poll_interval
        self.max_body = int(config.max_body_mb * 1024 * 1024)
        self.metrics = ServerMetrics()
        self.database_url = database_url
        self.engine = open_database(database_url)
        self.require_key = require_key
        self.key_hashes: frozenset[str] = frozenset()
        if require_key:
            self.key_hashes = active_hashes(self.engine)
            if not self.key_hashes:
                raise ServingError(
                    f"This server requires API keys (it binds to a non-loopback address, or "
                    f"serve.require_api_key is true) but {database_url} holds no active key. "
                    f"Create one with 'mlwright keys create NAME', or bind to 127.0.0.1.")
        champion_source = None if not isinstance(champion, str) else champion
        loaded = load_source(champion, tracking_uri=tracking_uri)
        self.validator = RecordValidator(loaded.contract)
        self.contract = loaded.contract
        self.warm_record = {c.name: c.fill for c in self.validator.columns}
        self.champion = Slot("champion", champion_source, self._activate(loaded))
        challenger_source = challenger if isinstance(challenger, str) else None
        if challenger is None and champion_source and is_registry_ref(champion_source) \
                and "@" in champion_source and (config.challenger_share > 0 or config.shadow):
            challenger_source = champion_source.rsplit("@", 1)[0] + "@challenger"
        self.challenger = Slot("challenger", challenger_source, None)
        if challenger is not None and not isinstance(challenger, str):
            self.challenger.active = self._activate(load_source(challenger))
        elif challenger_source is not None:
            with contextlib.suppress(MlwrightError):
                self.challenger.active = self._activate(
                    load_source(challenger_source, tracking_uri=tracking_uri))
        self.router = Router(config.challenger_share)
        self.shadow = config.shadow
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="mlwright-predict",
                                           initializer=_one_thread_kernels)
        self.heavy = ThreadPoolExecutor(1, thread_name_prefix="mlwright-batch",
                                        initializer=_one_thread_kernels)
        wait = config.max_wait_ms / 1000
        self.batchers = {
            slot.role: MicroBatcher(slot, self.executor, max_batch=config.max_batch,
                                    max_wait=wait,
                                    on_batch=self.metrics.batch_rows.labels(slot.role).observe)
            for slot in (self.champion, self.challenger)}
        self.log = LogWriter(self.engine)
        self.metrics.log_queue.set_function(lambda: self.log.depth)
        self.ready = False
        self.background: set[asyncio.Task[Any]] = set()
        self.tasks: list[asyncio.Task[Any]] = []

    def arriving(self, delta: int) -> None:
        """Count requests between arrival and submission (the batchers wait for them)."""
        for batcher in self.batchers.values():
            batcher.arriving += delta
            if delta > 0:
                batcher.arrived += delta

    def _activate(self, loaded: Any) -> Active:
        active = Active(loaded, make_predictor(loaded))
        if hasattr(self, "warm_record"):
            active.predict([dict(self.warm_record)])  # first call pays one-off costs here
        return active

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        _one_thread_kernels()  # lone requests are predicted on the event loop's thread
        for batcher in self.batchers.values():
            batcher.start()
        self.log.start()
        loop = asyncio.get_running_loop()
        if self.champion.watchable or self.challenger.watchable:
            self.tasks.append(loop.create_task(self._watch()))
        if self.require_key:
            self.tasks.append(loop.create_task(self._refresh_keys()))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for batcher in self.batchers.values():
            await batcher.stop()
        if self.background:  # shadow predictions still running: they are logged too
            await asyncio.gather(*self.background, return_exceptions=True)
        await self.log.close()
        self.executor.shutdown(wait=True)
        self.heavy.shutdown(wait=True)

    async def _refresh_keys(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(5.0)
            try:
                self.key_hashes = await loop.run_in_executor(None, active_hashes, self.engine)
            except Exception:  # keep the last known keys when the database hiccups
                log.exception("could not refresh API keys")

    async def _watch(self) -> None:
        """Hot swap: follow each slot's alias; load a new version off the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll_interval)
            for slot in (self.champion, self.challenger):
                if not slot.watchable or slot.source is None:
                    continue
                source: str = slot.source
                try:
                    version = await loop.run_in_executor(
                        None, functools.partial(resolve, source, tracking_uri=self.tracking_uri))
                    current = slot.active.version if slot.active is not None else None
                    if version == current:
                        continue
                    if version is None:
                        if slot.role == "challenger":
                            slot.swap(None)
                        continue
                    loaded = await loop.run_in_executor(
                        None, functools.partial(load_source, source,
                                                tracking_uri=self.tracking_uri))
                    active = await loop.run_in_executor(None, self._activate, loaded)
                    slot.swap(active)
                    self.metrics.swaps.labels(slot.role).inc()
                    log.info("%s now serves %s version %s (was %s)", slot.role,
                             active.name, active.version, current)
                except Exception:  # a bad new version must not take the server down
                    log.exception("could not follow %s", slot.source)

    # -- helpers -------------------------------------------------------------------------

    def records_of(self, payload: Any) -> tuple[list[Any], list[str | None] | None]:
        """The records of a predict body, and the caller's keys if given."""
        features = self.validator.names
        keys: Any = None
        if isinstance(payload, list):
            records = payload
        elif isinstance(payload, dict) and "records" in payload and "records" not in features:
            records, keys = payload["records"], payload.get("keys")
            if not isinstance(records, list):
                raise _BadRequest(422, "'records' must be a list of JSON objects.")
        elif isinstance(payload, dict) and "columns" in payload and "columns" not in features:
            columns, keys = payload["columns"], payload.get("keys")
            if not isinstance(columns, dict) or not all(
                    isinstance(v, list) for v in columns.values()):
                raise _BadRequest(422, "'columns' must be an object of field: [values].")
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise _BadRequest(422, f"Every list in 'columns' must have the same length; "
                                  f"got lengths {sorted(lengths)}.")
            names = list(columns)
            records = [dict(zip(names, values, strict=True))
                       for values in zip(*columns.values(), strict=True)]
        elif isinstance(payload, dict):
            records = [payload]
        else:
            raise _BadRequest(422, f"Expected a JSON object (a record), a list of records, "
                              f"{{\"records\": [...]}} or {{\"columns\": {{...}}}}; got "
                              f"{type(payload).__name__}.")
        if not records:
            raise _BadRequest(422, "The request holds no records.")
        if keys is not None:
            if not isinstance(keys, list) or len(keys) != len(records) or not all(
                    isinstance(k, str | int) and not isinstance(k, bool) for k in keys):
                raise _BadRequest(422, f"'keys' must be a list of {len(records)} strings, one "
                                  f"per record.")
            keys = [str(k)[:200] for k in keys]
        return records, keys


async def _read_json(request: Request) -> Any:
    body = await request.body()
    if not body:
        raise _BadRequest(400, "The request body is empty; expected JSON.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(400, f"The request body is not valid JSON: {exc}.") from None


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 64 and given.isprintable():
        return given
    return uuid.uuid4().hex


def _sticky_key(request: Request, records: list[Any], keys: list[str | None] | None,
                field: str | None) -> str | None:
    """What keeps a caller on one A/B arm: serve.sticky_key (a record field or a header),
    else the X-Mlwright-Key header, else the first record's key."""
    if field:
        first = records[0] if records and isinstance(records[0], dict) else {}
        value = first.get(field)
        if value is None:
            value = request.headers.get(field)
        if value is not None:
            return str(value)
    return request.headers.get("x-mlwright-key") or (keys[0] if keys else None)


def _responses(ok: dict[str, Any], *codes: int) -> dict[int | str, dict[str, Any]]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    described = {400: "Malformed JSON or an unreadable upload", 401: "No valid API key",
                 413: "Request body over the size limit",
                 415: "Unsupported content type", 422: "Input breaks the data contract",
                 500: "Internal error", 501: "Not available in this installation",
                 503: "No model available for this request"}
    out: dict[int | str, dict[str, Any]] = {200: {"description": "OK", "content": ok}}
    for code in (*codes, 401, 413):
        out[code] = {"description": described[code], "content": error}
    return out


def _body(ref: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{ref}"}}}}}


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
    host = host or config.host
    if require_api_key is None:
        require_api_key = config.require_api_key
    if require_api_key is None:
        require_api_key = host not in LOOPBACK
    server = _Server(model, challenger=challenger, config=config,
                     database_url=database_url or StoreConfig.model_validate({}).database_url(),
                     tracking_uri=tracking_uri, require_key=require_api_key,
                     poll_interval=poll_interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()
            worker_exited()

    active0 = server.champion.active
    assert active0 is not None
    app = FastAPI(title=f"mlwright: {active0.name}", version=active0.version,
                  description="Predictions validated against the model's data contract.",
                  lifespan=lifespan)
    app.state.server = server
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(_Guard, server=server)
    metrics = server.metrics
    json_schema = {"application/json": {"schema": {"type": "object"}}}

    async def log_rejected(request_id: str, ts: float, records: list[Any],
                           keys: list[str | None] | None, errors: list[Issue],
                           started: float, first_row: int = 0) -> None:
        active = server.champion.active
        issues: dict[int, list[dict[str, Any]]] = {}
        for issue in errors:
            if first_row <= issue.record < first_row + len(records):
                issues.setdefault(issue.record - first_row, []).append(issue.to_dict())
        await server.log.put(PredictionEntry(
            request_id, ts, active.name if active else "", active.version if active else "",
            "champion", records, keys, None, None,
            (time.perf_counter() - started) * 1000, 422, issues, first_row=first_row))

    async def shadow_predict(records: list[dict[str, Any]], request_id: str, ts: float,
                             keys: list[str | None] | None,
                             issues: dict[int, list[dict[str, Any]]] | None) -> None:
        started = time.perf_counter()
        try:
            active, preds, proba = await server.batchers["challenger"].submit(records)
        except Exception:
            log.exception("shadow prediction failed")
            return
        metrics.predictions.labels(active.name, active.version, "shadow").inc(len(records))
        await server.log.put(PredictionEntry(
            request_id, ts, active.name, active.version, "shadow", records, keys, preds,
            proba, (time.perf_counter() - started) * 1000, 200, issues))

    def _issue_map(warnings: list[Issue]) -> dict[int, list[dict[str, Any]]] | None:
        if not warnings:
            return None
        out: dict[int, list[dict[str, Any]]] = {}
        for w in warnings:
            out.setdefault(max(w.record, 0), []).append(w.to_dict())
        return out

    @app.post("/v1/predict", summary="Predict for one record, a list, or columns",
              openapi_extra=_body("PredictRequest"),
              responses=_responses({"application/json": {"schema": {
                  "$ref": "#/components/schemas/PredictResponse"}}}, 400, 422, 503))
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        ts = time.time()
        request_id = _request_id(request)
        server_batchers = server.batchers
        server.arriving(1)
        try:
            try:
                payload = await _read_json(request)
                records, keys = server.records_of(payload)
            except _BadRequest as exc:
                metrics.errors.labels("/v1/predict", "bad_request").inc()
                return _json_response(_error_body(exc.detail), exc.status,
                                      {"x-request-id": request_id})
            clean, warnings, errors = server.validator.validate(records)
            if errors:
                metrics.errors.labels("/v1/predict", "contract").inc()
                await log_rejected(request_id, ts, records, keys, errors, started)
                return _json_response(_error_body(
                    f"{len({e.record for e in errors})} of {len(records)} records break the "
                    f"data contract; see 'errors' (record index and field).", errors),
                    422, {"x-request-id": request_id})
            sticky = _sticky_key(request, records, keys, config.sticky_key)
            to_challenger = (server.challenger.active is not None
                             and server.router.to_challenger(sticky or request_id))
            role = "challenger" if to_challenger else "champion"
        finally:
            server.arriving(-1)
        metrics.request_rows.observe(len(clean))
        try:
            active, preds, proba = await server_batchers[role].submit(clean)
        except ServingError as exc:
            return _json_response(_error_body(str(exc)), 503, {"x-request-id": request_id})
        issues = _issue_map(warnings)
        if server.shadow and role == "champion" and server.challenger.active is not None:
            task = asyncio.get_running_loop().create_task(
                shadow_predict(clean, request_id, ts, keys, issues))
            server.background.add(task)
            task.add_done_callback(server.background.discard)
        latency = (time.perf_counter() - started) * 1000
        metrics.predictions.labels(active.name, active.version, role).inc(len(clean))
        await server.log.put(PredictionEntry(request_id, ts, active.name, active.version, role,
                                             clean, keys, preds, proba, latency, 200, issues))
        body: dict[str, Any] = {
            "request_id": request_id, "model": active.name, "version": active.version,
            "role": role, "predictions": preds, "classes": active.loaded.classes,
            "probabilities": proba}
        if warnings:
            body["warnings"] = [w.to_dict() for w in warnings[:_MAX_SHOWN_ISSUES]]
        return _json_response(body, 200, {"x-request-id": request_id})

    @app.post("/v1/predict/batch", summary="Predict for an uploaded CSV or Parquet table",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "text/csv": {"schema": {"type": "string"}},
                  "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                                "format": "binary"}}}}},
              responses=_responses({"text/csv": {"schema": {"type": "string"}}},
                                   400, 415, 422, 503))
    async def predict_batch(request: Request) -> Response:
        import io

        import pandas as pd

        started = time.perf_counter()
        ts = time.time()
        request_id = _request_id(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if not body:
            return _json_response(_error_body("The upload is empty; send a CSV or Parquet "
                                              "table as the request body."), 400)
        loop = asyncio.get_running_loop()

        def read() -> pd.DataFrame:
            if body[:4] == b"PAR1" or content_type in ("application/vnd.apache.parquet",
                                                       "application/x-parquet"):
                return pd.read_parquet(io.BytesIO(body))
            from mlwright.data.sources import sniff_csv

            encoding, delimiter = sniff_csv(body)  # ';' from a European Excel, tabs...
            return pd.read_csv(io.BytesIO(body), sep=delimiter, encoding=encoding)

        if content_type not in ("text/csv", "application/csv", "application/vnd.apache.parquet",
                                "application/x-parquet", "application/octet-stream", ""):
            return _json_response(_error_body(
                f"Unsupported content type {content_type!r}: send text/csv or "
                f"application/vnd.apache.parquet."), 415)
        try:
            frame = await loop.run_in_executor(server.heavy, read)
        except Exception as exc:  # any parser error is the upload's fault
            metrics.errors.labels("/v1/predict/batch", "bad_request").inc()
            return _json_response(_error_body(f"Could not read the upload as "
                                              f"{'Parquet' if body[:4] == b'PAR1' else 'CSV'}: "
                                              f"{str(exc)[:300]}"), 400)
        if frame.empty:
            return _json_response(_error_body("The upload holds no rows."), 422)
        frame.columns = [str(c) for c in frame.columns]

        def check() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Issue],
                             list[Issue]]:
            objects = frame.astype(object).where(frame.notna(), None)
            records = objects.to_dict("records")
            return records, *server.validator.validate(records)

        records, clean, warnings, errors = await loop.run_in_executor(server.heavy, check)
        if errors:
            metrics.errors.labels("/v1/predict/batch", "contract").inc()
            for start in range(0, len(records), _BATCH_CHUNK):
                await log_rejected(request_id, ts, records[start:start + _BATCH_CHUNK], None,
                                   errors, started, first_row=start)
            return _json_response(_error_body(
                f"{len({e.record for e in errors})} of {len(records)} rows break the data "
                f"contract; 'record' is the row number (from 0).", errors), 422,
                {"x-request-id": request_id})
        active = server.champion.active
        if active is None:
            return _json_response(_error_body("No champion model is loaded."), 503)
        by_row = _issue_map(warnings) or {}

        async def stream() -> AsyncIterator[bytes]:
            classes = active.loaded.classes
            columns = ["row", "prediction"] + ([f"proba_{c}" for c in classes]
                                               if classes else [])
            yield (",".join(columns) + "\n").encode()
            for start in range(0, len(clean), _BATCH_CHUNK):
                chunk = clean[start:start + _BATCH_CHUNK]
                preds, proba = await loop.run_in_executor(server.heavy, active.predict, chunk)
                out = pd.DataFrame({"row": range(start, start + len(chunk)),
                                    "prediction": preds})
                if proba is not None and classes:
                    for j, c in enumerate(classes):
                        out[f"proba_{c}"] = [p[j] for p in proba]
                yield out.to_csv(index=False, header=False).encode()
                metrics.predictions.labels(active.name, active.version, "champion").inc(
                    len(chunk))
                issues = {i - start: by_row[i] for i in range(start, start + len(chunk))
                          if i in by_row}
                await server.log.put(PredictionEntry(
                    request_id, ts, active.name, active.version, "champion", chunk, None,
                    preds, proba, (time.perf_counter() - started) * 1000, 200,
                    issues or None, first_row=start))

        # The warnings (unknown categories, out of range) travel in headers: the body is
        # the prediction table. Each one is in the prediction log, by row.
        headers = {"x-request-id": request_id, "x-contract-warnings": str(len(warnings))}
        if warnings:
            headers["x-contract-warning-sample"] = "; ".join(
                f"row {w.record} {w.field}: {w.message}" for w in warnings[:3]
            ).encode("ascii", "replace").decode()[:1000]
        return StreamingResponse(stream(), media_type="text/csv", headers=headers)

    @app.post("/v1/explain", summary="Per-column contributions for records",
              openapi_extra=_body("ExplainRequest"),
              responses=_responses(json_schema, 400, 422, 501, 503))
    async def explain(request: Request) -> Response:
        try:
            payload = await _read_json(request)
            records, _ = server.records_of(payload)
        except _BadRequest as exc:
            return _json_response(_error_body(exc.detail), exc.status)
        if len(records) > 100:
            return _json_response(_error_body(
                f"Explain takes at most 100 records per request; got {len(records)}."), 422)
        clean, _warnings, errors = server.validator.validate(records)
        if errors:
            return _json_response(_error_body("Records break the data contract.", errors), 422)
        try:
            from mlwright.evaluate.explain import explain as _explain
        except ImportError:
            return _json_response(_error_body(
                "Explanations are not available in this installation."), 501)
        active = server.champion.active
        if active is None:
            return _json_response(_error_body("No champion model is loaded."), 503)

        def run() -> Any:
            import pandas as pd

            frame = pd.DataFrame.from_records(clean, columns=server.validator.names)
            return _explain(active.loaded.model, frame).to_dict()

        try:
            result = await asyncio.get_running_loop().run_in_executor(server.heavy, run)
        except MlwrightError as exc:  # e.g. a model the explainer does not support
            return _json_response(_error_body(str(exc)), 422)
        return _json_response({"model": active.name, "version": active.version,
                               "explanation": result})

    @app.post("/v1/feedback", summary="True labels for earlier predictions",
              openapi_extra=_body("FeedbackRequest"),
              responses=_responses({"application/json": {"schema": {
                  "$ref": "#/components/schemas/FeedbackResponse"}}}, 400, 422))
    async def feedback(request: Request) -> Response:
        try:
            payload = await _read_json(request)
        except _BadRequest as exc:
            return _json_response(_error_body(exc.detail), exc.status)
        if isinstance(payload, dict) and "items" in payload and "label" not in payload:
            payload = payload["items"]
        items = payload if isinstance(payload, list) else [payload]
        target = server.contract.target
        classes = target.classes if target is not None else None
        by_text = {str(c): c for c in classes} if classes else {}
        rows: list[dict[str, Any]] = []
        errors: list[Issue] = []
        now = time.time()
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "label" not in item:
                errors.append(Issue(i, "label", "missing_field", "error",
                                    "each feedback item is an object with a 'label'."))
                continue
            request_id, key, row = item.get("request_id"), item.get("key"), item.get("row", 0)
            if not (isinstance(request_id, str) and 0 < len(request_id) <= 64) and not (
                    isinstance(key, str) and 0 < len(key) <= 200):
                errors.append(Issue(i, "request_id", "missing_field", "error",
                                    "give 'request_id' (with 'row' for multi-record requests) "
                                    "or 'key' (a string of at most 200 characters)."))
                continue
            if isinstance(row, bool) or not isinstance(row, int) or row < 0:
                errors.append(Issue(i, "row", "type", "error",
                                    f"'row' must be a whole number >= 0, got {row!r}."))
                continue
            label = item["label"]
            if classes:
                if label in classes and not isinstance(label, bool | dict | list):
                    pass
                elif isinstance(label, str | int | float | bool) and str(label) in by_text:
                    label = by_text[str(label)]
                else:
                    errors.append(Issue(i, "label", "unknown_category", "error",
                                        f"{label!r} is not a class of this model; expected one "
                                        f"of {classes}."))
                    continue
            elif isinstance(label, bool) or not isinstance(label, int | float):
                errors.append(Issue(i, "label", "type", "error",
                                    f"expected a number (regression target), got {label!r}."))
                continue
            rows.append({"request_id": request_id if isinstance(request_id, str) else None,
                         "row": row, "key": key if isinstance(key, str) else None,
                         "label": label, "ts": now})
        if errors:
            return _json_response(_error_body("Feedback items are invalid; nothing was "
                                              "recorded.", errors), 422)
        if not rows:
            return _json_response(_error_body("No feedback items given."), 422)
        await server.log.put(FeedbackEntry(rows))
        return _json_response({"accepted": len(rows)})

    @app.get("/v1/model", summary="The served model: version, metrics, contract",
             responses=_responses(json_schema))
    async def model_info() -> Response:
        def describe(slot: Slot) -> dict[str, Any] | None:
            active = slot.active
            if active is None:
                return None
            loaded = active.loaded
            return {"name": loaded.name, "version": loaded.version, "role": slot.role,
                    "source": slot.source or loaded.source, "task": loaded.task,
                    "classes": loaded.classes, "metrics": loaded.metrics,
                    "run_id": loaded.run_id, "aliases": loaded.aliases}

        body = {"champion": describe(server.champion),
                "challenger": describe(server.challenger),
                "routing": {"challenger_share": config.challenger_share,
                            "shadow": config.shadow},
                "features": server.validator.names,
                "contract": server.contract.model_dump(mode="json", exclude_none=True)}
        return _json_response(body)

    @app.get("/healthz", summary="The process is up", responses=_responses(json_schema))
    async def healthz() -> Response:
        return _json_response({"status": "ok"})

    @app.get("/readyz", summary="Ready to predict",
             responses=_responses(json_schema, 503))
    async def readyz() -> Response:
        if server.ready and server.champion.active is not None:
            return _json_response({"status": "ready"})
        return _json_response({"detail": "not ready"}, 503)

    @app.get("/metrics", summary="Prometheus metrics",
             responses={200: {"description": "OK",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(exposition(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(
                _schema.components(server.contract))
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if extensions:
        def champion_folder() -> str:
            active = server.champion.active
            return str(active.loaded.source) if active is not None else ""

        context = ServeContext(server.database_url, active0.name, champion_folder,
                               metrics.registry, project)
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
                               "log_level": "warning", "loop": "auto", "http": "auto",
                               "timeout_graceful_shutdown": 30}
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
    uvicorn.Server(uvicorn.Config(app, **options)).run()


def app_from_environment() -> FastAPI:
    """The app factory of each worker process (``--workers N``)."""
    spec = orjson.loads(os.environ["MLWRIGHT_SERVE_SPEC"])
    return create_app(spec["model"], challenger=spec["challenger"],
                      config=ServeConfig(**spec["config"]), database_url=spec["database_url"],
                      tracking_uri=spec["tracking_uri"], host=spec["host"],
                      require_api_key=spec["require_api_key"], extensions=spec["extensions"],
                      project=None if spec["project"] is None else ProjectConfig.model_validate(
                          spec["project"]))
