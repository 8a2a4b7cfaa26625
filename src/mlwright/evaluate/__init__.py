"""evaluate stage of the loop (see docs/architecture.md)."""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """``mw.evaluate(result, ...)`` must work even after this subpackage was imported (the
    import system then binds ``mlwright.evaluate`` to the module, not to the function)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from mlwright.evaluate.report import evaluate

        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
