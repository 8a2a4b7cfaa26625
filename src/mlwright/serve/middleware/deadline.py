"""Time limits of a request: its body must arrive within ``serve.body_timeout_s`` (else 408,
uvicorn's h11 and httptools have no body timeout of their own) and its answer must start
within ``serve.request_timeout_s`` (else 503); a streamed answer, once started, is not cut.

One sweep a tenth of a second over the open requests, not a timer per request: a timer per
request (``asyncio.timeout``: three timer handles scheduled and cancelled each) cost a
quarter of the single-row throughput at concurrency 32. A request past its limit has its
task cancelled wherever it waits: reading the body, a worker thread's result, the
micro-batcher. Work already handed to a thread finishes there, but is bounded by
``serve.max_records`` and the body limit.
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

SWEEP_S = 0.1  # how late a limit may fire


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a length over 0, or chunks)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class _Open:
    """One request under watch: its task, its limits and where it stands."""

    __slots__ = ("answer_by", "body_by", "body_pending", "fired", "started", "task")

    def __init__(self, task: asyncio.Task[object], answer_by: float, body_by: float,
                 body_pending: bool) -> None:
        self.task = task
        self.answer_by = answer_by
        self.body_by = body_by
        self.body_pending = body_pending
        self.started = False
        self.fired = False  # this limit cancelled the task

    def overdue(self, now: float) -> bool:
        if self.started or self.fired:
            return False
        if self.body_pending:
            return now >= min(self.body_by, self.answer_by)
        return now >= self.answer_by


class DeadlineMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        self._open: set[_Open] = set()
        self._sweeping: asyncio.TimerHandle | None = None

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for request in self._open:
            if request.overdue(now):
                request.fired = True
                request.task.cancel()
        self._sweeping = loop.call_later(SWEEP_S, self._sweep) if self._open else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or task is None:
            await self.app(scope, receive, send)
            return
        config = self.state.config
        loop = asyncio.get_running_loop()
        start = loop.time()
        request = _Open(task, start + config.request_timeout_s, start + config.body_timeout_s,
                        _has_body(scope))
        self._open.add(request)
        if self._sweeping is None:
            self._sweeping = loop.call_later(SWEEP_S, self._sweep)

        async def receive_timed() -> Message:
            message = await receive()
            if request.body_pending and (message["type"] != "http.request"
                                         or not message.get("more_body", False)):
                request.body_pending = False  # the whole body is in (or the client left)
            return message

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                request.started = True  # a streamed answer is not cut once it started
            await send(message)

        try:
            await self.app(scope, receive_timed, watch)
        except asyncio.CancelledError:
            if request.started:
                raise
            if request.fired:  # this limit, not the server
                task.uncancel()
                unread = request.body_pending
                await self._refuse(scope, send, unread,
                                   unread and request.body_by <= request.answer_by,
                                   loop.time() - start)
                return
            # uvicorn ending the requests still open when a shutdown's grace period is
            # over. Answered, rather than with uvicorn's bare 500; the task ends here.
            await self._shutting_down(scope, send, request.body_pending)
        finally:
            self._open.discard(request)

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
