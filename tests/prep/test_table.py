"""TablePrep on real slices: shapes, robustness at predict time, feature origins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlwright.data import infer_kinds
from mlwright.datasets import load_suite
from mlwright.prep import DatetimeFeatures, TablePrep, plan_columns


@pytest.fixture(scope="module")
def mpls() -> pd.DataFrame:
    return load_suite("mpls_person_search", nrows=1500)


@pytest.mark.parametrize("style", ["tree", "linear"])
def test_unseen_categories_and_missing_values_never_raise(telco, style):
    X, y = telco.drop(columns="churn"), telco["churn"]
    prep = TablePrep(plan_columns(infer_kinds(X)), style, "binary").fit(X, y)
    odd = X.head(3).copy()
    odd["contract"] = ["Lifetime", None, "Two year"]        # unseen, missing, known
    odd["tenure"] = [np.nan, -5, 10_000]                     # missing and far out of range
    odd["payment_method"] = np.nan
    out = prep.transform(odd)
    assert out.shape == (3, len(prep.feature_names_out_))
    if style == "linear":
        assert np.isfinite(out).all()  # imputed, so linear models get no NaN
    else:
        codes = out[:, list(prep.ordinal_).index("contract")]
        assert codes[0] == -1 and codes[1] == -1 and codes[2] >= 0


def test_feature_origin_maps_every_output_to_an_input_column(trump):
    X, y = trump.drop(columns="source"), trump["source"]
    prep = TablePrep(plan_columns(infer_kinds(X)), "linear", "multiclass")
    out = prep.fit_transform(X, y)
    assert sp.issparse(out)  # the text block is sparse
    assert out.shape[1] == len(prep.feature_origin_)
    assert set(prep.feature_origin_) <= set(X.columns)
    assert "text" in set(prep.feature_origin_) and "created_at" in set(prep.feature_origin_)


def test_ordinal_block_comes_first_for_native_categoricals(mpls):
    X = mpls.drop(columns="personSearch")
    plan = plan_columns(infer_kinds(X))
    prep = TablePrep(plan, "tree").fit(X, mpls["personSearch"])
    assert prep.n_ordinal_ == plan.n_ordinal > 0
    assert list(prep.feature_origin_[: plan.n_ordinal]) == (plan.categorical
                                                            + plan.high_cardinality)


def test_target_encoding_is_cross_fitted_on_training_rows():
    df = load_suite("ames_housing", nrows=600)
    X, y = df.drop(columns="Sale_Price"), df["Sale_Price"]
    plan = plan_columns(infer_kinds(X))
    assert plan.high_cardinality  # Neighborhood
    prep = TablePrep(plan, "linear", "regression")
    train_out = prep.fit_transform(X, y)
    again = prep.transform(X)
    cols = [i for i, c in enumerate(prep.feature_origin_) if c in plan.high_cardinality]
    # Out-of-fold encodings on the training rows differ from the full-data encodings.
    assert not np.allclose(train_out[:, cols], again[:, cols])


def test_datetime_parts_match_pandas():
    stamps = pd.to_datetime(pd.Series(["2017-01-01T06:30:00Z", "2020-02-29T23:00:00Z", None]),
                            utc=True)
    frame = pd.DataFrame({"when": stamps})
    out = DatetimeFeatures().fit(frame).transform(frame)
    naive = stamps.dt.tz_localize(None)
    expected = np.column_stack([naive.dt.year, naive.dt.month, naive.dt.day,
                                naive.dt.day_of_week, naive.dt.day_of_year,
                                naive.dt.hour + naive.dt.minute / 60]).astype(float)
    np.testing.assert_allclose(out[:, :6], expected, equal_nan=True)
    assert np.isnan(out[2]).all()


def test_requests_with_text_values_in_numeric_columns_become_missing(telco):
    X, y = telco.drop(columns="churn"), telco["churn"]
    prep = TablePrep(plan_columns(infer_kinds(X)), "tree").fit(X, y)
    odd = X.head(2).astype(object)
    odd.loc[0, "monthly_charges"] = "not a number"
    out = prep.transform(odd)
    j = list(prep.feature_names_out_).index("monthly_charges")
    assert np.isnan(out[0, j]) and np.isfinite(out[1, j])
