"""``GET /healthz`` (the process is up) and ``GET /readyz`` (a champion is loaded and the
server has started: what a load balancer waits for). Both are open without an API key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright.serve.routes._common import JSON_OBJECT, json_response, responses, server_of

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", summary="The process is up", responses=responses(JSON_OBJECT))
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Ready to predict", responses=responses(JSON_OBJECT, 503))
async def readyz(request: Request) -> Response:
    server = server_of(request)
    if server.ready and server.champion.active is not None:
        return json_response({"status": "ready"})
    return json_response({"detail": "not ready"}, 503)
