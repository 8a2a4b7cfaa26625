"""Request metrics: every HTTP request counted by endpoint and status, and timed.

The outermost layer, so the 401, 413 and 500 answers of the layers inside are counted too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mlwright.serve.middleware._base import ASGIApp, Message, Receive, Scope, Send
from mlwright.serve.prometheus import endpoint_label

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["MetricsMiddleware"]


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what a request that never got an answer counts as

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            metrics = self.state.metrics
            endpoint = endpoint_label(scope["path"])
            metrics.requests.labels(endpoint, str(status)).inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
