"""registry stage of the loop: MLflow-backed runs, versions, aliases, lineage, audit.

Names resolve lazily so that importing the package does not import MLflow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "Registry": "mlwright.registry.core",
    "ModelVersionInfo": "mlwright.registry.core",
    "load_model": "mlwright.registry.core",
    "resolve_version": "mlwright.registry.core",
    "parse_ref": "mlwright.registry.core",
    "CHAMPION": "mlwright.registry.core",
    "CHALLENGER": "mlwright.registry.core",
    "AuditLog": "mlwright.registry.audit",
    "LoadedModel": "mlwright.registry.model",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from mlwright.registry.audit import AuditLog
    from mlwright.registry.core import (
        CHALLENGER,
        CHAMPION,
        ModelVersionInfo,
        Registry,
        load_model,
        parse_ref,
        resolve_version,
    )
    from mlwright.registry.model import LoadedModel


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwright.registry' has no attribute {name!r}")
