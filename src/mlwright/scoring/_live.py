"""Live scores: logged answers against the labels sent back later, for the monitor and the
loop alike (one parser of logged outputs, one metric)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlwright.scoring._table import get_metric, score_or_nan

__all__ = ["live_arrays", "live_score"]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # None, or a label that is not a number
        return float("nan")


def _class_codes(labels: list[Any], classes: list[Any]) -> list[int]:
    """Each label's index in ``classes`` (-1: none), read by the contract's label rules
    (:func:`mlwright.data.contract.rules.to_label`), as the server stores them: a label
    logged as ``10.0`` before the server stored canonical labels is still class ``10``,
    whatever the column's dtype (a mixed int/float column reads as floats)."""
    from mlwright.data.contract.rules import to_label

    plain = [c.item() if isinstance(c, np.generic) else c for c in classes]
    index = {(type(c), c): i for i, c in enumerate(plain)}
    seen: dict[tuple[type, Any], int] = {}
    out: list[int] = []
    for value in labels:
        value = value.item() if isinstance(value, np.generic) else value
        key = (type(value), value)
        try:
            code = seen.get(key)
        except TypeError:  # an unhashable label (a list): no class
            out.append(-1)
            continue
        if code is None:
            found, _ = to_label(value, classes=plain)
            code = seen[key] = -1 if found is None else index.get((type(found), found), -1)
        out.append(code)
    return out


def live_arrays(labelled: Mapping[str, Any], *, task: str,
                classes: list[Any] | None, label: str = "__label__",
                prediction: str = "_mw_prediction", proba: str = "_mw_proba"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, pred, keep)`` from logged answers and their labels.

    ``labelled`` maps column names to sequences (a DataFrame, or a dict of lists): the
    label, the logged prediction (regression) and the logged class probabilities, in the
    answering model's ``classes`` order. A row is kept when its label and output are usable:
    numbers for regression; a label among ``classes`` and a probability list of
    ``len(classes)`` for classification. ``y`` is label-encoded for classification;
    ``keep`` marks the kept rows of the input.
    """
    labels = list(labelled[label]) if label in labelled else []
    if task == "regression":
        outputs = list(labelled[prediction]) if prediction in labelled else []
        pred = np.array([_number(v) for v in outputs], dtype=np.float64)
        y = np.array([_number(v) for v in labels], dtype=np.float64)
        keep = np.isfinite(pred) & np.isfinite(y)
        return y[keep], pred[keep], keep
    assert classes is not None
    codes = _class_codes(labels, classes)
    rows = list(labelled[proba]) if proba in labelled else []
    keep = np.array([code >= 0 and isinstance(row, list | tuple | np.ndarray)
                     and len(row) == len(classes)
                     for code, row in zip(codes, rows, strict=True)], dtype=bool)
    y = np.array([code for code, k in zip(codes, keep, strict=True) if k], dtype=np.int64)
    kept = [[float(v) for v in row] for row, k in zip(rows, keep, strict=True) if k]
    pred = np.array(kept, dtype=np.float64) if kept else np.empty((0, len(classes)))
    return y, pred, keep


def live_score(labelled: Mapping[str, Any], *, task: str, classes: list[Any] | None,
               metric: str | None, label: str = "__label__",
               prediction: str = "_mw_prediction", proba: str = "_mw_proba"
               ) -> tuple[float, int]:
    """The metric (a name; None: the task's default) of the logged answers against their
    labels, and the number of rows scored; (nan, 0) without usable rows, nan where the rows
    have no score (one class: no ROC AUC). Columns as in :func:`live_arrays`."""
    y, pred, _ = live_arrays(labelled, task=task, classes=classes, label=label,
                             prediction=prediction, proba=proba)
    if len(y) == 0:
        return float("nan"), 0
    score = score_or_nan(get_metric(metric, task), y, pred)
    return (score if math.isfinite(score) else float("nan")), len(y)
