"""``POST /v1/explain``: per-column contributions for at most 100 records (optional: the
explainer is imported on first use, and answers 501 where it is not installed)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright.exceptions import MlwrightError
from mlwright.serve.bodies import records_of
from mlwright.serve.routes._common import (
    JSON_OBJECT,
    BadRequest,
    body_schema,
    error_body,
    json_response,
    read_json,
    responses,
    server_of,
)

__all__ = ["router"]

_MAX_RECORDS = 100

router = APIRouter()


@router.post("/v1/explain", summary="Per-column contributions for records",
             openapi_extra=body_schema("ExplainRequest"),
             responses=responses(JSON_OBJECT, 400, 422, 501, 503))
async def explain(request: Request) -> Response:
    server = server_of(request)
    try:
        payload = await read_json(request)
        records, _ = records_of(payload, server.validator.names, server.config.max_records)
    except BadRequest as exc:
        return json_response(error_body(exc.detail), exc.status)
    if len(records) > _MAX_RECORDS:
        return json_response(error_body(
            f"Explain takes at most {_MAX_RECORDS} records per request; got "
            f"{len(records)}."), 422)
    clean, _warnings, errors = server.validator.validate(records)
    if errors:
        return json_response(error_body(f"{errors.describe(len(records))}.", errors), 422)
    try:
        from mlwright.evaluate.explain.local import explain as _explain
    except ImportError:
        return json_response(error_body(
            "Explanations are not available in this installation."), 501)
    active = server.champion.active
    if active is None:
        return json_response(error_body("No champion model is loaded."), 503)

    def run() -> Any:
        import pandas as pd

        frame = pd.DataFrame.from_records(clean, columns=server.validator.names)
        return _explain(active.loaded.model, frame).to_dict()

    try:
        result = await asyncio.get_running_loop().run_in_executor(server.heavy, run)
    except MlwrightError as exc:  # e.g. a model the explainer does not support
        return json_response(error_body(str(exc)), 422)
    return json_response({"model": active.name, "version": active.version,
                          "explanation": result})
