"""The live score of logged answers, shared by the monitor and the loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlwright.scoring import live_arrays, live_score


def test_classification_rows_need_a_known_label_and_a_full_probability_list() -> None:
    frame = pd.DataFrame({
        "__label__": ["yes", "no", "maybe", "yes", "no"],
        "_mw_proba": [[0.2, 0.8], [0.9, 0.1], [0.5, 0.5], None, [0.3, 0.3, 0.4]],
    })
    y, pred, keep = live_arrays(frame, task="binary", classes=["no", "yes"])
    assert keep.tolist() == [True, True, False, False, False]
    assert y.tolist() == [1, 0] and pred.shape == (2, 2)
    score, n = live_score(frame, task="binary", classes=["no", "yes"], metric="accuracy")
    assert (score, n) == (1.0, 2)
    # one class only: no ROC AUC
    score, n = live_score(frame.iloc[:1], task="binary", classes=["no", "yes"], metric=None)
    assert math.isnan(score) and n == 1


def test_regression_rows_skip_labels_that_are_not_numbers() -> None:
    # Regression: the monitor raised ValueError on a label such as "n/a" (float("n/a")).
    joined = {"label": [1.0, "2.5", "n/a", None, 4.0], "prediction": [1.5, 2.0, 3.0, 1.0, None],
              "proba": [None] * 5}
    y, pred, keep = live_arrays(joined, task="regression", classes=None, label="label",
                                prediction="prediction", proba="proba")
    assert keep.tolist() == [True, True, False, False, False]
    assert y.tolist() == [1.0, 2.5] and pred.tolist() == [1.5, 2.0]
    score, n = live_score(joined, task="regression", classes=None, metric="mae",
                          label="label", prediction="prediction", proba="proba")
    assert score == pytest.approx(0.5) and n == 2


def test_no_rows() -> None:
    assert live_score(pd.DataFrame(), task="multiclass", classes=["a", "b", "c"],
                      metric=None)[1] == 0
    y, pred, keep = live_arrays({"label": [], "proba": []}, task="multiclass",
                                classes=["a", "b", "c"], label="label", proba="proba")
    assert len(y) == 0 and pred.shape == (0, 3) and len(keep) == 0
    assert np.isnan(live_score({}, task="regression", classes=None, metric=None)[0])


def test_one_label_type_and_mixed_label_types_read_the_same_classes() -> None:
    # The one-type path maps distinct labels in C; mixed types go label by label. Both read
    # labels by the contract's rules: 10.0 is class 10, True is not class 1, "x" no class.
    proba = [[0.5, 0.5]] * 4
    one_type = live_arrays({"__label__": [10, 20, 10, 30], "_mw_proba": proba},
                           task="binary", classes=[10, 20])
    mixed = live_arrays({"__label__": [10.0, "20", True, [1]], "_mw_proba": proba},
                        task="binary", classes=[10, 20])
    assert one_type[2].tolist() == [True, True, True, False]
    assert one_type[0].tolist() == [0, 1, 0]
    assert mixed[2].tolist() == [True, True, False, False]
    assert mixed[0].tolist() == [0, 1]


def test_a_probability_row_that_is_not_numbers_is_left_out() -> None:
    y, pred, keep = live_arrays({"__label__": ["a", "b", "a"],
                                 "_mw_proba": [[0.1, 0.9], ["x", 0.5], [0.7, 0.3]]},
                                task="binary", classes=["a", "b"])
    assert keep.tolist() == [True, False, True]
    assert pred.tolist() == [[0.1, 0.9], [0.7, 0.3]] and y.tolist() == [0, 0]
