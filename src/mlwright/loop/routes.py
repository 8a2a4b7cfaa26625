"""``POST /v1/hooks/retrain``: an authenticated webhook that asks the loop to retrain.

The route only sets a flag in the project database (the ``webhook`` trigger fires on it at
the loop's next pass), so it answers at once and never blocks serving. The server mounts
the router built here; it may pass its own authentication dependency, else API keys are
checked here against the same hashed-key table the server uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, status
from pydantic import BaseModel, Field

__all__ = ["RetrainRequest", "api_key_dependency", "hooks_router", "mount"]


class RetrainRequest(BaseModel):
    reason: str = Field("webhook", max_length=500, description="why a retrain is wanted")
    evidence: dict[str, Any] = Field(default_factory=dict,
                                     description="anything worth keeping in the audit log")


def api_key_dependency(database_url: str) -> Any:
    """A FastAPI dependency accepting ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
    for an active key created with ``mlwright keys create`` that has the admin scope;
    returns the key's hash."""
    from mlwright.serve.keys import active_keys, hash_key

    def check(authorization: str | None = Header(None),
              x_api_key: str | None = Header(None)) -> str:
        key = x_api_key
        if key is None and authorization and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if not key:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                detail="An API key is required: send 'Authorization: Bearer "
                                       "KEY' or 'X-API-Key: KEY' (mlwright keys create).",
                                headers={"WWW-Authenticate": "Bearer"})
        digest = hash_key(key)
        found = active_keys(database_url).get(digest)
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                detail="This API key is unknown or revoked.",
                                headers={"WWW-Authenticate": "Bearer"})
        if "admin" not in found.allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"The API key {found.name!r} (id {found.id}) lacks the "
                                       f"scope 'admin' that the retrain webhook needs; create "
                                       f"one with 'mlwright keys create NAME --scope admin'.")
        return digest

    return check


def hooks_router(database_url: str, *, auth: Any = None, require_key: bool = True,
                 dependencies: Sequence[Any] = ()) -> APIRouter:
    """The webhook router.

    Args:
        database_url: the project database (``store.database_url()``).
        auth: a FastAPI dependency that authenticates the caller (the server's own);
            default: :func:`api_key_dependency` when ``require_key``.
        require_key: without ``auth``, False leaves the route open (loopback use only).
    """
    deps = list(dependencies)
    if auth is not None:
        deps.append(Depends(auth))
    elif require_key:
        deps.append(Depends(api_key_dependency(database_url)))
    router = APIRouter(tags=["loop"], dependencies=deps)

    @router.post("/v1/hooks/retrain", status_code=status.HTTP_202_ACCEPTED,
                 summary="Ask the loop to retrain at its next pass")
    def retrain_hook(body: RetrainRequest | None = None) -> dict[str, Any]:
        from mlwright.loop.triggers import request_retrain

        request = body or RetrainRequest(reason="webhook")
        request_retrain(database_url, reason=request.reason, actor="webhook",
                        evidence=request.evidence)
        return {"accepted": True, "reason": request.reason,
                "detail": "the webhook trigger fires at the loop's next pass"}

    return router


def mount(app: Any, context: Any) -> None:
    """Server extension (``mlwright serve``): the authenticated ``POST /v1/hooks/retrain``."""
    app.include_router(hooks_router(context.database_url))
