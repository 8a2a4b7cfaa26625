"""registry stage of the loop: MLflow-backed runs, versions, aliases, lineage, audit.

Names resolve lazily so that importing the package does not import MLflow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "Registry": "mlwright.registry.core",
    "ModelVersionInfo": "mlwright.registry.versions",
    "load_model": "mlwright.registry.core",
    "resolve_version": "mlwright.registry.core",
    "parse_ref": "mlwright.registry.versions",
    "CHAMPION": "mlwright.registry.versions",
    "CHALLENGER": "mlwright.registry.versions",
    "AuditLog": "mlwright.registry.audit",
    "LoadedModel": "mlwright.registry.model",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from mlwright.registry.audit import AuditLog
    from mlwright.registry.core import Registry, load_model, resolve_version
    from mlwright.registry.model import LoadedModel
    from mlwright.registry.versions import CHALLENGER, CHAMPION, ModelVersionInfo, parse_ref


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwright.registry' has no attribute {name!r}")
