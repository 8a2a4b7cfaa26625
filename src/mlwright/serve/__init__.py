"""serve stage of the loop: the REST API (see docs/architecture.md).

``create_app`` builds the FastAPI app, ``run_server`` runs it under uvicorn. Imported lazily
so that ``import mlwright.serve`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "run_server"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlwright.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'mlwright.serve' has no attribute {name!r}")
