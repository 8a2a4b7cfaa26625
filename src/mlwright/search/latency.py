"""Measured cost of serving a fitted ensemble: single-row latency through the compiled
predictor (:mod:`mlwright.search.predictor`, the path the server and ``Ensemble.predict``
take) and its size as the run folder stores it. Measured, never estimated: ``--trim`` and
``--distill`` report these beside the CV scores."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np

__all__ = ["measure"]


def _records(frame: Any) -> list[dict[str, Any]]:
    """Rows as a JSON request carries them (what the server passes on): None for missing,
    ISO strings for dates (a Timestamp object sends the compiled path to pandas)."""
    import pandas as pd

    def plain(v: Any) -> Any:
        if v is None or (isinstance(v, float) and v != v) or v is pd.NaT or v is pd.NA:
            return None
        return v.isoformat() if isinstance(v, pd.Timestamp) else v

    return [{k: plain(v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


def measure(model: Any, rows: Any, *, repeat: int = 200, contract: Any = None
            ) -> dict[str, float]:
    """``{"p50_us", "p90_us", "size_mb"}`` of ``model`` (an Ensemble): one-record
    ``predict_records`` calls over ``rows`` (a DataFrame of raw feature rows, taken in
    turn), after a warm-up; the size of its joblib file (compress=3, as ``model.joblib``)."""
    import joblib

    from mlwright.search.predictor import compile_predictor

    predictor = compile_predictor(model, contract)
    records = _records(rows[list(model.feature_names)]) or [{}]
    for warm in records[:5]:
        predictor.predict_records([warm])
    times = np.empty(repeat)
    for i in range(repeat):
        one = [records[i % len(records)]]
        start = time.perf_counter()
        predictor.predict_records(one)
        times[i] = time.perf_counter() - start
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return {"p50_us": float(np.median(times) * 1e6),
            "p90_us": float(np.percentile(times, 90) * 1e6),
            "size_mb": buffer.tell() / 1e6}
