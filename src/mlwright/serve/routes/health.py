"""``GET /healthz`` (the process is up) and ``GET /readyz`` (a champion is loaded, the
server has started and the project database takes the prediction log: what a load balancer
waits for). Both are open without an API key.

While the database is down /readyz answers 503 with ``"status": "database_down"``; the
server still answers predictions, keeping their log entries in memory until it is back
(see :mod:`mlwright.serve.logwriter`)."""

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
    problem = server.database_problem()
    if problem is not None:
        return json_response({
            "status": "database_down",
            "detail": f"The project database cannot be reached ({problem}); predictions "
                      f"are answered and their log entries kept in memory "
                      f"({server.log.depth} queued) until it is back.",
            "log_queue": server.log.depth}, 503)
    if server.ready and server.champion.active is not None:
        return json_response({"status": "ready"})
    return json_response({"detail": "not ready"}, 503)
