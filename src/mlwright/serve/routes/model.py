"""``GET /v1/model`` (the served models, routing and contract) and the OpenAPI document's
extras: the request and response schemas learned from the model's data contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from mlwright.serve import schema
from mlwright.serve.routes._common import JSON_OBJECT, json_response, responses, server_of

if TYPE_CHECKING:
    from mlwright.serve.runtime import Slot

__all__ = ["contract_openapi", "router"]

router = APIRouter()


def _describe(slot: Slot) -> dict[str, Any] | None:
    active = slot.active
    if active is None:
        return None
    loaded = active.loaded
    return {"name": loaded.name, "version": loaded.version, "role": slot.role,
            "source": slot.source or loaded.source, "task": loaded.task,
            "classes": loaded.classes, "metrics": loaded.metrics,
            "run_id": loaded.run_id, "aliases": loaded.aliases}


@router.get("/v1/model", summary="The served model: version, metrics, contract",
            responses=responses(JSON_OBJECT))
async def model_info(request: Request) -> Response:
    server = server_of(request)
    config = server.config
    body = {"champion": _describe(server.champion),
            "challenger": _describe(server.challenger),
            "routing": {"challenger_share": config.challenger_share,
                        "shadow": config.shadow},
            "features": server.validator.names,
            "contract": server.contract.model_dump(mode="json", exclude_none=True)}
    return json_response(body)


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """``app.openapi``: FastAPI's document plus the contract's schemas (built once)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(title=app.title, version=app.version,
                           description=app.description, routes=app.routes)
        spec.setdefault("components", {}).setdefault("schemas", {}).update(
            schema.components(app.state.server.contract))
        app.openapi_schema = spec
    return app.openapi_schema
