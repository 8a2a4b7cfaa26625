"""The server's routes, one ``APIRouter`` per concern. ``ROUTERS`` is the order they are
mounted in (the order of the OpenAPI document's paths)."""

from __future__ import annotations

from mlwright.serve.routes import batch, docs, explain, feedback, health, metrics, model, predict
from mlwright.serve.routes.model import contract_openapi

__all__ = ["ROUTERS", "contract_openapi"]

ROUTERS = (predict.router, batch.router, explain.router, feedback.router, model.router,
           health.router, metrics.router, docs.router)
