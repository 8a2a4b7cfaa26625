"""AutoClassifier / AutoRegressor keep scikit-learn's estimator contract.

scikit-learn's own conformance checks run on both (short budgets, one linear trial), then
the uses a user meets first: ``score``, ``cross_val_score`` and a ``Pipeline``, on real
tables with mixed column types.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlwright.search.estimators import AutoClassifier, AutoRegressor

pytestmark = pytest.mark.slow  # about 110 short searches

FAST = {"time_budget": 5, "n_trials": 1, "families": ["linear"], "n_jobs": 1}


@parametrize_with_checks([AutoClassifier(**FAST), AutoRegressor(**FAST)])
def test_scikit_learn_contract(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def churn(telco: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    frame = telco.head(600)
    return frame.drop(columns=["churn"]), frame["churn"]


def test_predict_has_the_dtype_of_y_and_score_works(churn):
    X, y = churn
    clf = AutoClassifier(**FAST).fit(X.head(450), y.head(450))
    pred = clf.predict(X.tail(150))
    assert pred.dtype == clf.classes_.dtype == np.unique(y.to_numpy()).dtype
    assert set(pred) <= set(clf.classes_) == set(y)
    accuracy = clf.score(X.tail(150), y.tail(150))
    assert accuracy == pytest.approx(float((pred == y.tail(150).to_numpy()).mean()))
    assert accuracy > 0.6


def test_integer_classes_come_back_as_integers(churn):
    X, y = churn
    codes = (y == y.iloc[0]).astype(np.int64).to_numpy()
    clf = AutoClassifier(**FAST).fit(X, codes)
    assert clf.classes_.dtype == np.int64
    assert clf.predict(X.head(5)).dtype == np.int64


@pytest.mark.parametrize("scoring", [None, "roc_auc"])
def test_cross_val_score_gives_finite_scores(churn, scoring):
    X, y = churn
    scores = cross_val_score(AutoClassifier(**FAST), X, y, cv=3, scoring=scoring,
                             error_score="raise")
    assert np.isfinite(scores).all() and (scores > 0.6).all()


def test_inside_a_pipeline(churn):
    X, y = churn
    pipe = make_pipeline(FunctionTransformer(lambda f: f.drop(columns=["customer_id"],
                                                              errors="ignore")),
                         AutoClassifier(**FAST))
    pipe.fit(X.head(450), y.head(450))
    assert 0.6 < pipe.score(X.tail(150), y.tail(150)) <= 1.0


def test_regressor_scores_r2_on_a_real_table():
    from mlwright.datasets import load_suite

    diamonds = load_suite("diamonds", nrows=800)
    X, y = diamonds.drop(columns=["price"]), diamonds["price"]
    folds = KFold(3, shuffle=True, random_state=0)  # the table is sorted by price
    scores = cross_val_score(AutoRegressor(**FAST), X, y, cv=folds, error_score="raise")
    assert np.isfinite(scores).all() and (scores > 0.8).all()
