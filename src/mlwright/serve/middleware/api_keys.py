"""API keys and their scopes: every path but the health checks, the API's documentation
and the paths an extension declares open (``state.open_paths``: the dashboard's login and
assets) needs an active key, sent as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
(or, from a browser, the dashboard's ``mlwright_key`` cookie), whose scopes include the one
the route needs (:func:`required_scope`); 401 without one, 403 naming the scope when it
lacks it. A request that changes state with the cookie alone must carry ``HX-Request`` (the
dashboard's own requests do; a form posted from another site cannot), else 403.

Checked before the body is read. The keys live on the server state, which refreshes them
every few seconds (a revoked key stops working without a restart). The caller's
:class:`~mlwright.serve.keys.ApiKey` is left in the ASGI scope under :data:`KEY_SCOPE` for
the rate limit inside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from mlwright.serve.keys import hash_key
from mlwright.serve.middleware._base import ASGIApp, Receive, Scope, Send, reply
from mlwright.serve.prometheus import endpoint_label
from mlwright.serve.routes.docs import ASSETS, DOCS

if TYPE_CHECKING:
    from mlwright.serve.keys import ApiKey

__all__ = ["COOKIE", "KEY_SCOPE", "OPEN_PATHS", "ROUTE_SCOPES", "ApiKeyMiddleware",
           "KeyState", "presented_key", "required_scope"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", DOCS, f"{DOCS}/oauth2-redirect",
                        *ASSETS})
KEY_SCOPE = "mlwright.api_key"
COOKIE = "mlwright_key"  # the dashboard's login cookie (HttpOnly, SameSite=Strict)

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


class KeyState(Protocol):
    """What the middleware reads: the server's state, or the dashboard's own."""

    require_key: bool
    keys: dict[str, ApiKey]
    metrics: Any
    open_paths: set[str]


def presented_key(headers: dict[bytes, bytes]) -> tuple[str | None, bool]:
    """The key a request presents (header first, then the dashboard's cookie) and whether
    it came from the cookie."""
    key = headers.get(b"x-api-key")
    if key is None:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            key = auth[7:].strip()
    if key is not None:
        return key.decode("latin-1"), False
    for part in headers.get(b"cookie", b"").split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == COOKIE.encode() and value:
            return value.decode("latin-1"), True
    return None, False


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, state: KeyState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        path = scope.get("path", "")
        if scope["type"] == "http" and state.require_key and path not in OPEN_PATHS \
                and path not in state.open_paths:
            headers = dict(scope["headers"])
            key, from_cookie = presented_key(headers)
            found = state.keys.get(hash_key(key)) if key else None
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
            if from_cookie and scope["method"] not in _READING \
                    and b"hx-request" not in headers:
                await reply(send, 403, {"detail": "A request that changes state with the "
                                        "dashboard's cookie must come from the dashboard "
                                        "(HX-Request header); send the key in a header."})
                return
            scope[KEY_SCOPE] = found
        await self.app(scope, receive, send)
