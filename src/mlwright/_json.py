"""The one way to make values JSON-safe: strict JSON (no bare NaN or Infinity), plain Python
types, string keys. Reports, evidence and API answers all go through it."""

from __future__ import annotations

import json
import math
import sys
from datetime import date, datetime
from typing import Any

__all__ = ["dumps", "finite", "json_safe"]


def finite(x: Any) -> float | None:
    """``x`` as a float, or None when it is None, NaN or infinite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None, numpy scalars and arrays as Python
    numbers and lists, tuples as lists, keys as strings, dates in ISO 8601, and any other
    object as its ``str``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    # No numpy value exists before numpy is imported: the CLI starts without it.
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            return [json_safe(v) for v in value.tolist()]
        if isinstance(value, np.generic):
            value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if type(value).__name__ == "NaTType":  # pandas' missing time (a datetime subclass)
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of :func:`json_safe` ``(value)``; ``kwargs`` go to ``json.dumps``."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)
