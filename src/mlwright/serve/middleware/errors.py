"""No traceback reaches a client: an unexpected exception is logged and answered with a
plain 500 JSON body (when no response has started yet). A client that leaves while its
body is read is no error of the server's: counted (kind ``client_gone``), not logged with
a traceback (twenty such tracebacks, rendered by the CLI's log handler, held the event loop
0.4 s in the soak)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect

from mlwright._logging import get_logger
from mlwright.serve.middleware._base import ASGIApp, Message, Receive, Scope, Send, reply
from mlwright.serve.prometheus import endpoint_label

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["ErrorsMiddleware"]

log = get_logger(__name__)


class ErrorsMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:  # nobody to answer
            self.state.metrics.errors.labels(endpoint_label(scope["path"]), "client_gone").inc()
        except Exception:
            path = scope["path"]
            log.exception("unexpected error on %s", path)
            self.state.metrics.errors.labels(endpoint_label(path), "internal").inc()
            if not started:
                await reply(send, 500, {"detail": "Internal error; see the server log."})
