"""Writing prediction-log rows as the server does (see conftest.py)."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import orjson
import pandas as pd


def _json_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def log_rows(engine: Any, trained: Any, frame: pd.DataFrame, *, model: str = "telco",
             version: str = "1", t0: float = 1.7e9, step: float = 1.0, batch: int = 1,
             with_keys: bool = False) -> list[tuple[str, int]]:
    """Score ``frame`` with the real model and log it; (request_id, row) of every record."""
    from mlwright.serve.logstore import predictions

    X = frame[trained.features]
    proba = trained.model.predict_proba(X)
    labels = trained.model.classes_[proba.argmax(axis=1)]
    records = X.to_dict(orient="records")
    rows, ids = [], []
    for start in range(0, len(frame), batch):
        request_id = uuid.uuid4().hex
        for k in range(start, min(start + batch, len(frame))):
            ids.append((request_id, k - start))
            rows.append({
                "request_id": request_id, "row": k - start, "ts": t0 + k * step,
                "model": model, "version": version, "role": "champion",
                "key": f"cust-{k}" if with_keys else None,
                "inputs": orjson.dumps({c: _json_value(v) for c, v in records[k].items()}
                                       ).decode(),
                "prediction": orjson.dumps(_json_value(labels[k])).decode(),
                "proba": orjson.dumps([float(p) for p in proba[k]]).decode(),
                "latency_ms": 2.0 + (k % 7), "status": 200, "violations": "[]"})
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    return ids


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """monthly_charges scaled by 1.3; the shares of two contract values swapped."""
    out = frame.copy()
    out["monthly_charges"] = out["monthly_charges"] * 1.3
    swap = {"Month-to-month": "Two year", "Two year": "Month-to-month"}
    out["contract"] = out["contract"].map(lambda v: swap.get(v, v))
    return out
