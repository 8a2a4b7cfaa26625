"""``POST /v1/predict``: the hot path. One record, a list, ``{"records": [...]}`` or
``{"columns": {...}}``; validated by the compiled record validator, answered through the
micro-batcher (A/B routing and shadow predictions included), logged, returned as orjson."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright._logging import get_logger
from mlwright.exceptions import ServingError
from mlwright.serve.logwriter import PredictionEntry
from mlwright.serve.routes._common import (
    MAX_SHOWN_ISSUES,
    BadRequest,
    body_schema,
    error_body,
    issue_map,
    json_response,
    log_rejected,
    read_json,
    request_id,
    responses,
    server_of,
)

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["THREAD_FROM", "records_of", "router", "too_many"]

log = get_logger(__name__)

router = APIRouter()


# From this many records, or a body this large, on, a request is validated on a worker
# thread: the event loop keeps answering others meanwhile (a few ms of validation inline
# cost less than the hop). The body counts too: one record can hold 650,000 fields.
THREAD_FROM = 256
THREAD_FROM_BYTES = 256 * 1024


def too_many(records: int, limit: int) -> BadRequest:
    return BadRequest(413, f"The request holds {records:,} records; the limit is {limit:,} "
                      f"per request (serve.max_records). Send them in requests of at most "
                      f"{limit:,} records, or upload a table to /v1/predict/batch.")


def records_of(server: ServerState, payload: Any
               ) -> tuple[list[Any], list[str | None] | None]:
    """The records of a predict body, and the caller's keys if given."""
    features = server.validator.names
    limit = server.config.max_records
    keys: Any = None
    if isinstance(payload, list):
        records = payload
    elif isinstance(payload, dict) and "records" in payload and "records" not in features:
        records, keys = payload["records"], payload.get("keys")
        if not isinstance(records, list):
            raise BadRequest(422, "'records' must be a list of JSON objects.")
    elif isinstance(payload, dict) and "columns" in payload and "columns" not in features:
        columns, keys = payload["columns"], payload.get("keys")
        if not isinstance(columns, dict) or not all(
                isinstance(v, list) for v in columns.values()):
            raise BadRequest(422, "'columns' must be an object of field: [values].")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise BadRequest(422, f"Every list in 'columns' must have the same length; "
                             f"got lengths {sorted(lengths)}.")
        if lengths and max(lengths) > limit:
            raise too_many(max(lengths), limit)
        names = list(columns)
        records = [dict(zip(names, values, strict=True))
                   for values in zip(*columns.values(), strict=True)]
    elif isinstance(payload, dict):
        records = [payload]
    else:
        raise BadRequest(422, f"Expected a JSON object (a record), a list of records, "
                         f"{{\"records\": [...]}} or {{\"columns\": {{...}}}}; got "
                         f"{type(payload).__name__}.")
    if not records:
        raise BadRequest(422, "The request holds no records.")
    if len(records) > limit:
        raise too_many(len(records), limit)
    if keys is not None:
        if not isinstance(keys, list) or len(keys) != len(records) or not all(
                isinstance(k, str | int) and not isinstance(k, bool) for k in keys):
            raise BadRequest(422, f"'keys' must be a list of {len(records)} strings, one "
                             f"per record.")
        keys = [str(k)[:200] for k in keys]
    return records, keys


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


async def _shadow_predict(server: ServerState, records: list[dict[str, Any]],
                          request_id: str, ts: float, keys: list[str | None] | None,
                          issues: dict[int, list[dict[str, Any]]] | None) -> None:
    """The challenger's prediction on a request the champion answered: logged only."""
    started = time.perf_counter()
    try:
        active, preds, proba = await server.batchers["challenger"].submit(records)
    except Exception:
        log.exception("shadow prediction failed")
        return
    server.metrics.predictions.labels(active.name, active.version, "shadow").inc(len(records))
    await server.log.put(PredictionEntry(
        request_id, ts, active.name, active.version, "shadow", records, keys, preds,
        proba, (time.perf_counter() - started) * 1000, 200, issues))


@router.post("/v1/predict", summary="Predict for one record, a list, or columns",
             openapi_extra=body_schema("PredictRequest"),
             responses=responses({"application/json": {"schema": {
                 "$ref": "#/components/schemas/PredictResponse"}}}, 400, 413, 422, 503))
async def predict(request: Request) -> Response:
    started = time.perf_counter()
    ts = time.time()
    rid = request_id(request)
    server = server_of(request)
    metrics = server.metrics
    server.arriving(1)
    counted = True  # in the batchers' count of requests on their way
    try:
        try:
            limit = server.config.max_records
            payload = await read_json(request, max_records=limit,
                                      max_containers=limit + len(server.validator.names) + 16)
            records, keys = records_of(server, payload)
        except BadRequest as exc:
            metrics.errors.labels("/v1/predict", "too_large" if exc.status == 413
                                  else "bad_request").inc()
            return json_response(error_body(exc.detail), exc.status, {"x-request-id": rid})
        if len(records) < THREAD_FROM and len(await request.body()) < THREAD_FROM_BYTES:
            clean, warnings, errors = server.validator.validate(records)
        else:
            # Not on its way to a batcher for a while: lone requests need not wait for it.
            server.arriving(-1)
            counted = False
            clean, warnings, errors = await asyncio.get_running_loop().run_in_executor(
                server.validating, server.validator.validate, records)
        if errors:
            metrics.errors.labels("/v1/predict", "contract").inc()
            await log_rejected(server, rid, ts, records, keys, errors, started)
            return json_response(error_body(
                f"{errors.describe(len(records))}; see 'errors' (record index and field).",
                errors), 422, {"x-request-id": rid})
        sticky = _sticky_key(request, records, keys, server.config.sticky_key)
        to_challenger = (server.challenger.active is not None
                         and server.router.to_challenger(sticky or rid))
        role = "challenger" if to_challenger else "champion"
    finally:
        if counted:
            server.arriving(-1)
    metrics.request_rows.observe(len(clean))
    try:
        active, preds, proba = await server.batchers[role].submit(clean)
    except ServingError as exc:
        return json_response(error_body(str(exc)), 503, {"x-request-id": rid})
    issues = issue_map(warnings)
    if server.shadow and role == "champion" and server.challenger.active is not None:
        task = asyncio.get_running_loop().create_task(
            _shadow_predict(server, clean, rid, ts, keys, issues))
        server.background.add(task)
        task.add_done_callback(server.background.discard)
    latency = (time.perf_counter() - started) * 1000
    metrics.predictions.labels(active.name, active.version, role).inc(len(clean))
    await server.log.put(PredictionEntry(rid, ts, active.name, active.version, role,
                                         clean, keys, preds, proba, latency, 200, issues))
    body: dict[str, Any] = {
        "request_id": rid, "model": active.name, "version": active.version,
        "role": role, "predictions": preds, "classes": active.loaded.classes,
        "probabilities": proba}
    if warnings:
        body["warnings"] = [w.to_dict() for w in warnings[:MAX_SHOWN_ISSUES]]
    return json_response(body, 200, {"x-request-id": rid})
