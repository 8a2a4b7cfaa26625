"""API keys and their scopes: every path but the health checks and the API's documentation
needs an active key, sent as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, whose
scopes include the one the route needs (:func:`required_scope`); 401 without one, 403 naming
the scope when it lacks it.

Checked before the body is read. The keys live on the server state, which refreshes them
every few seconds (a revoked key stops working without a restart). The caller's
:class:`~mlwright.serve.keys.ApiKey` is left in the ASGI scope under :data:`KEY_SCOPE` for
the rate limit inside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlwright.serve.keys import hash_key
from mlwright.serve.middleware._base import ASGIApp, Receive, Scope, Send, reply
from mlwright.serve.prometheus import endpoint_label
from mlwright.serve.routes.docs import ASSETS, DOCS

if TYPE_CHECKING:
    from mlwright.serve.state import ServerState

__all__ = ["KEY_SCOPE", "OPEN_PATHS", "ROUTE_SCOPES", "ApiKeyMiddleware", "required_scope"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", DOCS, f"{DOCS}/oauth2-redirect",
                        *ASSETS})
KEY_SCOPE = "mlwright.api_key"

# The routes that need predict or feedback. Every other route needs read when it only reads
# (GET) and admin otherwise, so a route an extension adds (the retrain webhook) is admin's
# unless listed here.
ROUTE_SCOPES = {"/v1/predict": "predict", "/v1/predict/batch": "predict",
                "/v1/explain": "predict", "/v1/feedback": "feedback"}
_READING = frozenset({"GET", "HEAD", "OPTIONS"})


def required_scope(method: str, path: str) -> str:
    """The scope a request to ``method path`` needs."""
    scope = ROUTE_SCOPES.get(path)
    if scope is None:
        return "read" if method in _READING else "admin"
    return scope


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        path = scope.get("path", "")
        if scope["type"] == "http" and state.require_key and path not in OPEN_PATHS:
            headers = dict(scope["headers"])
            key = headers.get(b"x-api-key")
            if key is None:
                auth = headers.get(b"authorization", b"")
                if auth[:7].lower() == b"bearer ":
                    key = auth[7:].strip()
            found = state.keys.get(hash_key(key.decode("latin-1"))) if key else None
            if found is None:
                state.metrics.errors.labels(endpoint_label(path), "auth").inc()
                await reply(send, 401, {"detail": "A valid API key is required: send it as "
                                        "'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
                                        "(create one with 'mlwright keys create NAME')."})
                return
            needed = required_scope(scope["method"], path)
            if needed not in found.allowed:
                state.metrics.errors.labels(endpoint_label(path), "forbidden").inc()
                has = ", ".join(sorted(found.scopes)) or "none"
                await reply(send, 403, {
                    "detail": f"The API key {found.name!r} (id {found.id}) lacks the scope "
                              f"{needed!r} that {scope['method']} {path} needs (its scopes: "
                              f"{has}). Use a key that has it, or create one with 'mlwright "
                              f"keys create NAME --scope {needed}'.",
                    "scope": needed})
                return
            scope[KEY_SCOPE] = found
        await self.app(scope, receive, send)
