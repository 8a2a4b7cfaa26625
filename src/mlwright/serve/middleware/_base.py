"""What the server's pure-ASGI middleware share: the ASGI types and a JSON error reply.

Pure ASGI (no ``BaseHTTPMiddleware``): the hot path pays one coroutine call per layer and
request bodies stream through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "reply"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def reply(send: Send, status: int, body: dict[str, Any],
                headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer ``status`` with a JSON body (the shape of every error the API returns)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
