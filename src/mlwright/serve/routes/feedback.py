"""``POST /v1/feedback``: true labels for earlier predictions, joined later on
``(request_id, row)`` or on the caller's ``key``. All items are checked first: one bad item
and nothing is recorded.

Labels are read by the contract's rules for the target
(:func:`mlwright.data.contract.rules.to_label`) and stored in canonical form (``10.0`` is
stored as the integer class ``10``), so the monitor and the loop read them alike. The answer
says how many items were ``accepted`` (recorded), how many ``matched`` an answered
prediction and which did not (``unmatched``: index and reason); an unmatched label is kept
(a keyed prediction logged later still joins it) but labels nothing until it matches."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright.data.contract.rules import to_label
from mlwright.serve.logwriter import FeedbackEntry
from mlwright.serve.records import Issue
from mlwright.serve.routes._common import (
    MAX_SHOWN_ISSUES,
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


def label_rule(contract: Any) -> dict[str, Any]:
    """How the contract reads a label: the target's classes, or for regression the
    training targets' range (:func:`~mlwright.data.contract.rules.to_label`'s arguments)."""
    target = contract.target if contract is not None else None
    if target is None:
        return {"classes": None}
    if target.classes:
        return {"classes": list(target.classes)}
    spec = next((c for c in contract.columns if c.name == target.name), None)
    numeric = spec.stats.numeric if spec is not None else None
    low = numeric.min if numeric is not None else spec.min if spec is not None else None
    high = numeric.max if numeric is not None else spec.max if spec is not None else None
    return {"classes": None, "low": low, "high": high}


def _rows(items: list[Any], rule: dict[str, Any]
          ) -> tuple[list[dict[str, Any]], list[Issue]]:
    """The feedback rows to log, and the issues of the items that cannot be."""
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
        label, why = to_label(item["label"], **rule)
        if why is not None:
            code = "unknown_category" if rule["classes"] else "invalid_label"
            errors.append(Issue(i, "label", code, "error", why))
            continue
        rows.append({"request_id": request_id if isinstance(request_id, str) else None,
                     "row": row, "key": key if isinstance(key, str) else None,
                     "label": label, "ts": now})
    return rows, errors


@router.post("/v1/feedback", summary="True labels for earlier predictions",
             openapi_extra=body_schema("FeedbackRequest"),
             responses=responses({"application/json": {"schema": {
                 "$ref": "#/components/schemas/FeedbackResponse"}}}, 400, 422, 503))
async def feedback(request: Request) -> Response:
    server = server_of(request)
    try:
        payload = await read_json(request)
    except BadRequest as exc:
        return json_response(error_body(exc.detail), exc.status)
    if isinstance(payload, dict) and "items" in payload and "label" not in payload:
        payload = payload["items"]
    items = payload if isinstance(payload, list) else [payload]
    rows, errors = _rows(items, label_rule(server.contract))
    if errors:
        return json_response(error_body("Feedback items are invalid; nothing was "
                                        "recorded.", errors), 422)
    if not rows:
        return json_response(error_body("No feedback items given."), 422)
    # Matched in the writing transaction, after every prediction answered before this
    # request (the log writer keeps the order of its queue).
    done: asyncio.Future[list[str | None]] = asyncio.get_running_loop().create_future()
    await server.log.put(FeedbackEntry(rows, done))
    try:
        reasons = await done
    except RuntimeError:
        return json_response(error_body("The feedback could not be written to the "
                                        "prediction log; send it again."), 503)
    unmatched = [{"item": i, "request_id": row["request_id"], "row": row["row"],
                  "key": row["key"], "reason": why}
                 for i, (row, why) in enumerate(zip(rows, reasons, strict=True))
                 if why is not None]
    return json_response({"accepted": len(rows), "matched": len(rows) - len(unmatched),
                          "unmatched": len(unmatched),
                          "unmatched_items": unmatched[:MAX_SHOWN_ISSUES]})
