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
from mlwright.serve.bodies import LARGE_BODY, Checked, records_of, sticky_value
from mlwright.serve.logwriter import PredictionEntry
from mlwright.serve.routes._common import (
    MAX_SHOWN_ISSUES,
    BadRequest,
    body_schema,
    error_body,
    issue_map,
    json_response,
    log_rejected,
    parse_json,
    request_id,
    responses,
    server_of,
)

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["THREAD_FROM", "router"]

log = get_logger(__name__)

router = APIRouter()


# From this many records on, a request's validation goes to a worker thread: the event loop
# keeps answering others meanwhile (a few ms of validation inline cost less than the hop).
# A body of LARGE_BODY bytes or more is parsed and validated in the body worker process.
THREAD_FROM = 256


def _sticky_key(request: Request, first: Any, keys: list[str | None] | None,
                field: str | None) -> str | None:
    """What keeps a caller on one A/B arm: serve.sticky_key (a record field or a header),
    else the X-Mlwright-Key header, else the first record's key. ``first`` is the value of
    the sticky field in the first record (None when absent)."""
    if field:
        value = first if first is not None else request.headers.get(field)
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
        limit = server.config.max_records
        checked: Checked | None = None
        try:
            raw = await request.body()
            if len(raw) >= LARGE_BODY:
                # Not on its way to a batcher for a while: lone requests need not wait for it.
                server.arriving(-1)
                counted = False
                checked = await server.bodies.check(raw)
            else:
                payload = parse_json(raw, max_records=limit,
                                     max_containers=limit + len(server.validator.names) + 16)
                records, keys = records_of(payload, server.validator.names, limit)
        except BadRequest as exc:
            kind = {413: "too_large", 503: "unavailable"}.get(exc.status, "bad_request")
            metrics.errors.labels("/v1/predict", kind).inc()
            return json_response(error_body(exc.detail), exc.status, {"x-request-id": rid})
        if checked is not None:
            clean, warnings, errors, keys = (checked.clean, checked.warnings, checked.errors,
                                             checked.keys)
            records = checked.refused or clean  # the refused ones as log JSON already
        elif len(records) < THREAD_FROM:
            clean, warnings, errors = server.validator.validate(records)
        else:
            server.arriving(-1)
            counted = False
            clean, warnings, errors = await asyncio.get_running_loop().run_in_executor(
                server.validating, server.validator.validate, records)
        if errors:
            metrics.errors.labels("/v1/predict", "contract").inc()
            await log_rejected(server, rid, ts, records, keys, errors, started,
                               encoded=checked is not None)
            total = len(records) if checked is None else checked.records
            return json_response(error_body(
                f"{errors.describe(total)}; see 'errors' (record index and field).",
                errors), 422, {"x-request-id": rid})
        field = server.config.sticky_key
        first = checked.sticky if checked is not None else sticky_value(records, field)
        sticky = _sticky_key(request, first, keys, field)
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
