"""What local and global explanations share: the model behind any wrapper, the per-style
aggregation matrix (output features -> original columns), and JSON-safe values."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd

from mlwright.exceptions import MlwrightError

_AGGREGATION: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_EPS = 1e-10


def _json(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, pd.Timestamp | np.datetime64):
        return None if pd.isna(v) else pd.Timestamp(v).isoformat()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _json(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _unwrap(model: Any) -> tuple[Any, str | None]:
    """(Ensemble, metric name or None) from an Ensemble, TrainResult, LoadedModel or
    AutoClassifier / AutoRegressor."""
    metric = None
    for _ in range(3):
        if hasattr(model, "members") and hasattr(model, "preps"):
            return model, metric
        if hasattr(model, "model_"):  # AutoClassifier / AutoRegressor
            result = getattr(model, "result_", None)
            metric = metric or getattr(getattr(result, "metric", None), "name", None)
            model = model.model_
        elif hasattr(model, "model"):  # TrainResult / LoadedModel
            m = getattr(model, "metric", None) or getattr(model, "metrics", {}).get("metric")
            metric = metric or (m if isinstance(m, str) else None)
            model = model.model
        else:
            break
    raise MlwrightError(
        f"explain() expects a model trained by mlwright (an Ensemble, a TrainResult, a "
        f"loaded model or an AutoClassifier/AutoRegressor), got {type(model).__name__}. "
        f"Train one with mw.train(df, target).")


def _aggregation(prep: Any, columns: list[str]) -> Any:
    from mlwright.evaluate.explain.contributions import aggregation_matrix

    cached = _AGGREGATION.get(prep)
    if cached is None or cached[0] != columns:
        cached = (list(columns), aggregation_matrix(prep.feature_origin_, list(columns)))
        _AGGREGATION[prep] = cached
    return cached[1]


def _has_agnostic(ens: Any) -> bool:
    return any(_needs_background(ens, m["style"]) for m in ens.members)


def _needs_background(ens: Any, style: str) -> bool:
    from mlwright.evaluate.explain.contributions import member_kind

    return any(m["style"] == style and member_kind(m["estimator"]) == "agnostic"
               for m in ens.members)

