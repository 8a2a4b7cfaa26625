"""``GET /metrics``: the Prometheus exposition of this server (every worker's, merged, with
``--workers N``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright.serve.prometheus import exposition
from mlwright.serve.routes._common import server_of

__all__ = ["router"]

router = APIRouter()


@router.get("/metrics", summary="Prometheus metrics",
            responses={200: {"description": "OK",
                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def prometheus(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(exposition(server_of(request).metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
