"""What the route modules share: JSON responses and error bodies, the request's id and
JSON body, the OpenAPI fragments of every operation, and the prediction-log entries of
refused records."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from mlwright.serve.bodies import BadRequest, count_containers, parse_json
from mlwright.serve.logwriter import PredictionEntry
from mlwright.serve.records import Issue

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["JSON_OBJECT", "MAX_SHOWN_ISSUES", "BadRequest", "body_schema", "count_containers",
           "error_body",
           "issue_map", "json_response", "log_rejected", "read_json", "request_id",
           "responses", "server_of"]

MAX_SHOWN_ISSUES = 50
JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}


def server_of(request: Request) -> ServerState:
    """The app's :class:`~mlwright.serve.state.ServerState` (set by ``create_app``)."""
    return request.app.state.server


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def json_response(value: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(value), status_code=status, media_type="application/json",
                    headers=headers)


def error_body(detail: str, errors: list[Issue] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = [e.to_dict() for e in errors[:MAX_SHOWN_ISSUES]]
    return body


def issue_map(warnings: list[Issue]) -> dict[int, list[dict[str, Any]]] | None:
    """The warnings by record index, as the prediction log keeps them."""
    if not warnings:
        return None
    out: dict[int, list[dict[str, Any]]] = {}
    for w in warnings:
        out.setdefault(max(w.record, 0), []).append(w.to_dict())
    return out


async def read_json(request: Request, *, max_records: int | None = None,
                    max_containers: int = 0) -> Any:
    """The request's JSON body (:func:`~mlwright.serve.bodies.parse_json`)."""
    return parse_json(await request.body(), max_records=max_records,
                      max_containers=max_containers)


def request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 64 and given.isprintable():
        return given
    return uuid.uuid4().hex


async def log_rejected(server: ServerState, request_id: str, ts: float, records: list[Any],
                       keys: list[str | None] | None, errors: list[Issue], started: float,
                       first_row: int = 0, encoded: bool = False) -> None:
    """Log records refused by the contract (status 422), with their issues by row
    (``encoded``: the records are the log's JSON text already)."""
    active = server.champion.active
    issues: dict[int, list[dict[str, Any]]] = {}
    for issue in errors:
        if first_row <= issue.record < first_row + len(records):
            issues.setdefault(issue.record - first_row, []).append(issue.to_dict())
    await server.log.put(PredictionEntry(
        request_id, ts, active.name if active else "", active.version if active else "",
        "champion", records, keys, None, None,
        (time.perf_counter() - started) * 1000, 422, issues, first_row=first_row,
        encoded=encoded))


def responses(ok: dict[str, Any], *codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented answers of an operation: 200 with ``ok``, the error ``codes``, and
    the 401 / 403 / 408 / 413 / 429 / 503 every operation may get from the middleware."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    described = {400: "Malformed JSON or an unreadable upload", 401: "No valid API key",
                 403: "The API key lacks the scope this route needs",
                 408: "Request body not received in time",
                 413: "Request body over the size limit, or too many records",
                 429: "Over the API key's rate limit (see Retry-After)",
                 415: "Unsupported content type", 422: "Input breaks the data contract",
                 500: "Internal error", 501: "Not available in this installation",
                 503: "No model available, or not answered within the time limit"}
    out: dict[int | str, dict[str, Any]] = {200: {"description": "OK", "content": ok}}
    for code in (*codes, 401, 403, 408, 413, 429, 503):
        out[code] = {"description": described[code], "content": error}
    return out


def body_schema(ref: str) -> dict[str, Any]:
    """``openapi_extra`` of a JSON body described by the contract's schema ``ref``."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{ref}"}}}}}
