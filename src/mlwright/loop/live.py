"""Live performance of one model version from its logged predictions and their feedback."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from mlwright.exceptions import ConfigError

__all__ = ["live_score", "parse_interval"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str, *, field: str = "interval") -> float:
    """``"45s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text))
    if not match:
        raise ConfigError(f"{field} must be a duration like 45s, 30m, 12h, 7d or 2w; got "
                          f"{text!r}.")
    return float(match.group(1)) * _UNITS[match.group(2)]


def live_score(labelled: pd.DataFrame, *, task: str, classes: list[Any] | None,
               metric: str | None, label: str = "__label__") -> tuple[float, int]:
    """The metric of the logged answers (``_mw_proba`` / ``_mw_prediction``) against their
    labels; (nan, 0) without usable rows. Probabilities are in the answering model's
    ``classes`` order, as the server logs them."""
    from mlwright.data.kinds import Task
    from mlwright.search.metrics import get_metric

    if len(labelled) == 0:
        return float("nan"), 0
    t = Task(task)
    m = get_metric(metric, t)
    if t is Task.REGRESSION:
        pred = pd.to_numeric(labelled["_mw_prediction"], errors="coerce").to_numpy(float)
        y = pd.to_numeric(labelled[label], errors="coerce").to_numpy(float)
        ok = np.isfinite(pred) & np.isfinite(y)
        if not ok.any():
            return float("nan"), 0
        return m.score(y[ok], pred[ok]), int(ok.sum())
    assert classes is not None
    lookup = {str(c): i for i, c in enumerate(classes)}
    y_list: list[int] = []
    p_list: list[list[float]] = []
    for lab, proba in zip(labelled[label], labelled["_mw_proba"], strict=True):
        if str(lab) in lookup and isinstance(proba, list) and len(proba) == len(classes):
            y_list.append(lookup[str(lab)])
            p_list.append([float(v) for v in proba])
    if not y_list:
        return float("nan"), 0
    try:
        score = m.score(np.asarray(y_list), np.asarray(p_list))
    except ValueError:  # one class only: no AUC
        score = float("nan")
    return (score if math.isfinite(score) else float("nan")), len(y_list)
