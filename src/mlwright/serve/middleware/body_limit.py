"""The request body limit (``serve.max_body_mb``): a declared ``Content-Length`` over it is
refused before reading; a body streamed without one is cut off once it passes the limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlwright.serve.middleware._base import ASGIApp, Message, Receive, Scope, Send, reply
from mlwright.serve.prometheus import endpoint_label

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["BodyLimitMiddleware"]


class _TooLarge(Exception):
    """Raised from ``receive`` inside the app; caught here, so it never reaches a client."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        limit = state.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = False
            if too_big:
                state.metrics.errors.labels(endpoint_label(scope["path"]), "too_large").inc()
                await reply(send, 413, {"detail": f"The request body is {int(length):,} bytes; "
                                        f"the limit is {limit:,} (serve.max_body_mb)."})
                return
        received = 0
        started = False

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_limited, watch)
        except _TooLarge:
            state.metrics.errors.labels(endpoint_label(scope["path"]), "too_large").inc()
            if not started:
                await reply(send, 413, {"detail": f"The request body is over the limit of "
                                        f"{limit:,} bytes (serve.max_body_mb)."})
