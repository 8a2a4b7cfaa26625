"""Time limits of a request: its body must arrive within ``serve.body_timeout_s`` (else 408,
uvicorn's h11 and httptools have no body timeout of their own) and its answer must start
within ``serve.request_timeout_s`` (else 503); a streamed answer, once started, is not cut.

One timer per request (``asyncio.timeout``): it first stands at the body's deadline, moves
to the answer's once the body is in, and is lifted when the answer starts. When it fires,
the request's task is cancelled wherever it waits: reading the body, a worker thread's
result, the micro-batcher. Work already handed to a thread finishes there, but is bounded
by ``serve.max_records`` and the body limit.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson

from mlwright._logging import get_logger
from mlwright.serve.middleware._base import ASGIApp, Message, Receive, Scope, Send
from mlwright.serve.prometheus import endpoint_label

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["DeadlineMiddleware"]

log = get_logger(__name__)


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a length over 0, or chunks)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class DeadlineMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.state.config
        loop = asyncio.get_running_loop()
        start = loop.time()
        answer_by = start + config.request_timeout_s
        body_by = start + config.body_timeout_s
        body_pending = _has_body(scope)
        started = False
        timer = asyncio.timeout_at(min(answer_by, body_by) if body_pending else answer_by)

        async def receive_timed() -> Message:
            nonlocal body_pending
            message = await receive()
            if body_pending and (message["type"] != "http.request"
                                 or not message.get("more_body", False)):
                body_pending = False  # the whole body is in (or the client left)
                if not started:
                    timer.reschedule(answer_by)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                timer.reschedule(None)  # a streamed answer is not cut once it started
            await send(message)

        try:
            async with timer:
                await self.app(scope, receive_timed, watch)
        except asyncio.CancelledError:
            # Not this timer (it raises TimeoutError): uvicorn ending the requests still
            # open when a shutdown's grace period is over. Answered, rather than with
            # uvicorn's bare 500; the task ends here all the same.
            if started:
                raise
            await self._shutting_down(scope, send, body_pending)
        except TimeoutError:
            if started or not timer.expired():  # the app's own timeout, not this limit
                raise
            await self._refuse(scope, send, body_pending, body_pending and body_by <= answer_by,
                               loop.time() - start)

    async def _shutting_down(self, scope: Scope, send: Send, unread: bool) -> None:
        grace = self.state.config.shutdown_grace_s
        self.state.metrics.errors.labels(endpoint_label(scope["path"]), "shutdown").inc()
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                   (b"connection", b"close")]
        detail = (f"The server is shutting down and this request was not done within the "
                  f"grace period of {grace:g} s (serve.shutdown_grace_s); retry it"
                  f"{' (its body had not arrived)' if unread else ''}.")
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps({"detail": detail})})

    async def _refuse(self, scope: Scope, send: Send, unread: bool, late_body: bool,
                      waited: float) -> None:
        config = self.state.config
        path = scope["path"]
        if late_body:
            status, kind = 408, "body_timeout"
            detail = (f"The request body was not fully received within "
                      f"{config.body_timeout_s:g} s (serve.body_timeout_s); the request was "
                      f"dropped. Send the whole body at once, or raise the limit.")
        else:
            status, kind = 503, "timeout"
            detail = (f"The request was not answered within {config.request_timeout_s:g} s "
                      f"(serve.request_timeout_s) and was stopped. Send fewer records per "
                      f"request, retry later, or raise the limit.")
        log.warning("%s %s stopped after %.1f s: %s", scope.get("method", ""), path, waited,
                    kind)
        self.state.metrics.errors.labels(endpoint_label(path), kind).inc()
        headers = [(b"content-type", b"application/json")]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        if unread:  # the rest of the body is not read: the connection cannot go on
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps({"detail": detail})})
