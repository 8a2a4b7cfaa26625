"""Lazy imports of heavy optional dependencies, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from mlwright.exceptions import MissingDependencyError


def require(module: str, *, feature: str, package: str | None = None, extra: str | None = None
            ) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package or module.split(".")[0], feature, extra) from exc
