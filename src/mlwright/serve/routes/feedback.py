"""``POST /v1/feedback``: true labels for earlier predictions, joined later on
``(request_id, row)`` or on the caller's ``key``. All items are checked first: one bad item
and nothing is recorded."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright.serve.logwriter import FeedbackEntry
from mlwright.serve.records import Issue
from mlwright.serve.routes._common import (
    BadRequest,
    body_schema,
    error_body,
    json_response,
    read_json,
    responses,
    server_of,
)

__all__ = ["router"]

router = APIRouter()


def _rows(items: list[Any], classes: list[Any] | None
          ) -> tuple[list[dict[str, Any]], list[Issue]]:
    """The feedback rows to log, and the issues of the items that cannot be."""
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
    return rows, errors


@router.post("/v1/feedback", summary="True labels for earlier predictions",
             openapi_extra=body_schema("FeedbackRequest"),
             responses=responses({"application/json": {"schema": {
                 "$ref": "#/components/schemas/FeedbackResponse"}}}, 400, 422))
async def feedback(request: Request) -> Response:
    server = server_of(request)
    try:
        payload = await read_json(request)
    except BadRequest as exc:
        return json_response(error_body(exc.detail), exc.status)
    if isinstance(payload, dict) and "items" in payload and "label" not in payload:
        payload = payload["items"]
    items = payload if isinstance(payload, list) else [payload]
    target = server.contract.target
    rows, errors = _rows(items, target.classes if target is not None else None)
    if errors:
        return json_response(error_body("Feedback items are invalid; nothing was "
                                        "recorded.", errors), 422)
    if not rows:
        return json_response(error_body("No feedback items given."), 422)
    await server.log.put(FeedbackEntry(rows))
    return json_response({"accepted": len(rows)})
