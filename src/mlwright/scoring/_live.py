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
    except (TypeError, ValueError, OverflowError):  # None, text, an int beyond a double
        return float("nan")


def _class_codes(labels: list[Any], classes: list[Any]) -> np.ndarray:
    """Each label's index in ``classes`` (-1: none), read by the contract's label rules
    (:func:`mlwright.data.contract.rules.to_label`), as the server stores them: a label
    logged as ``10.0`` before the server stored canonical labels is still class ``10``,
    whatever the column's dtype (a mixed int/float column reads as floats). Each distinct
    label is read once."""
    from mlwright.data.contract.rules import to_label

    plain = [c.item() if isinstance(c, np.generic) else c for c in classes]
    index = {(type(c), c): i for i, c in enumerate(plain)}

    def code(value: Any) -> int:
        found, _ = to_label(value, classes=plain)
        return -1 if found is None else index.get((type(found), found), -1)

    kinds = set(map(type, labels))
    if len(kinds) == 1 and kinds <= {str, int, float}:
        # One JSON type (the usual log): 1 and 1.0 and True cannot share a dict key, so
        # the distinct labels map in C; a million labels in milliseconds.
        codes = {value: code(value) for value in dict.fromkeys(labels)}
        return np.fromiter(map(codes.__getitem__, labels), dtype=np.int64, count=len(labels))
    seen: dict[tuple[type, Any], int] = {}
    out = np.full(len(labels), -1, dtype=np.int64)
    for i, value in enumerate(labels):
        value = value.item() if isinstance(value, np.generic) else value
        key = (type(value), value)
        try:
            found = seen.get(key)
        except TypeError:  # an unhashable label (a list): no class
            continue
        if found is None:
            found = seen[key] = code(value)
        out[i] = found
    return out


def _numbers(values: list[Any]) -> np.ndarray:
    """``values`` as floats, NaN where one is not a number."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # text, a list or a huge int among them
        return np.array([_number(v) for v in values], dtype=np.float64)


def _probabilities(rows: list[Any], width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(proba, usable)``: the logged probability lists as a (rows, width) array (zeros
    where a row is unusable) and which rows are lists of ``width`` numbers."""
    try:
        proba = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError):  # ragged, None or text among the rows
        proba = None
    if proba is not None and proba.shape == (len(rows), width):
        return proba, np.ones(len(rows), dtype=bool)
    usable = np.zeros(len(rows), dtype=bool)
    out = np.zeros((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        if isinstance(row, list | tuple | np.ndarray) and len(row) == width:
            try:
                out[i] = [float(v) for v in row]
            except (TypeError, ValueError):
                continue
            usable[i] = True
    return out, usable


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
        pred, y = _numbers(outputs), _numbers(labels)
        keep = np.isfinite(pred) & np.isfinite(y)
        return y[keep], pred[keep], keep
    assert classes is not None
    codes = _class_codes(labels, classes)
    rows = list(labelled[proba]) if proba in labelled else []
    if len(rows) != len(codes):
        raise ValueError(f"{len(codes)} labels but {len(rows)} logged probability rows.")
    probabilities, usable = _probabilities(rows, len(classes))
    keep = (codes >= 0) & usable
    return codes[keep], probabilities[keep], keep


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
