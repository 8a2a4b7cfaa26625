"""``GET /healthz`` (the process is up) and ``GET /readyz`` (a champion is loaded and the
server has started: what a load balancer waits for). Both are open without an API key.

While the project database is down /readyz still answers 200, with ``"status": "degraded"``
and ``"database": "down"``: the server answers predictions and keeps their log entries in
memory until the database is back (see :mod:`mlwright.serve.logwriter`). Replicas share one
database, so a 503 there would take every replica out of a load balancer at once, for an
outage the servers ride out. Once that memory is full (requests then wait for room),
/readyz answers 503."""

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
        queued, room = server.log.depth, server.log.max_queue
        full = queued >= room
        return json_response({
            "status": "database_down" if full else "degraded",
            "database": "down",
            "detail": f"The project database cannot be reached ({problem}); predictions "
                      f"are answered and their log entries kept in memory ({queued:,} of "
                      f"{room:,} queued) until it is back"
                      + (": memory full, requests wait for room." if full else "."),
            "log_queue": queued}, 503 if full else 200)
    if server.ready and server.champion.active is not None:
        return json_response({"status": "ready"})
    return json_response({"detail": "not ready"}, 503)
