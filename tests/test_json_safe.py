"""The one JSON-safe helper: strict JSON, plain types."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from mlwright._json import dumps, finite, json_safe


def test_non_finite_numbers_become_null() -> None:
    value = {"a": float("nan"), "b": [np.float32("inf"), -np.inf, 1.5], "c": (np.int64(3),),
             1: np.array([1.0, np.nan]), "d": np.bool_(True)}
    assert json_safe(value) == {"a": None, "b": [None, None, 1.5], "c": [3], "1": [1.0, None],
                                "d": True}
    text = dumps(value)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["c"] == [3]


def test_dates_and_other_objects() -> None:
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert json_safe([when, date(2024, 5, 1), pd.Timestamp("2024-05-01"), pd.NaT]) == [
        "2024-05-01T12:00:00+00:00", "2024-05-01", "2024-05-01T00:00:00", None]
    assert json_safe({"path": object}) == {"path": str(object)}


def test_finite() -> None:
    assert finite(None) is None and finite(float("nan")) is None and finite(np.inf) is None
    assert finite(np.float32(0.5)) == 0.5 and isinstance(finite(np.int64(2)), float)
    with pytest.raises(ValueError):
        json.dumps({"x": float("nan")}, allow_nan=False)
