"""API keys: every path but the health checks and the API's documentation needs an active
key, sent as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.

Checked before the body is read. The key hashes live on the server state, which refreshes
them every few seconds (a revoked key stops working without a restart).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlwright.serve.keys import hash_key
from mlwright.serve.middleware._base import ASGIApp, Receive, Scope, Send, reply
from mlwright.serve.prometheus import endpoint_label
from mlwright.serve.routes.docs import ASSETS, DOCS

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["OPEN_PATHS", "ApiKeyMiddleware"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", DOCS, f"{DOCS}/oauth2-redirect",
                        *ASSETS})


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        if scope["type"] == "http" and state.require_key and scope["path"] not in OPEN_PATHS:
            headers = dict(scope["headers"])
            key = headers.get(b"x-api-key")
            if key is None:
                auth = headers.get(b"authorization", b"")
                if auth[:7].lower() == b"bearer ":
                    key = auth[7:].strip()
            if not key or hash_key(key.decode("latin-1")) not in state.key_hashes:
                state.metrics.errors.labels(endpoint_label(scope["path"]), "auth").inc()
                await reply(send, 401, {"detail": "A valid API key is required: send it as "
                                        "'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
                                        "(create one with 'mlwright keys create NAME')."})
                return
        await self.app(scope, receive, send)
