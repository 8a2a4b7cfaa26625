"""measure(): single-row latency on the compiled predictor, fed records as a JSON request
carries them (a date as a Timestamp object would send every call down the pandas path)."""

from __future__ import annotations

import logging

import numpy as np

import mlwright as mw
from mlwright.datasets import load_suite
from mlwright.search.latency import _records, measure
from mlwright.search.predictor import compile_predictor


def test_records_with_dates_take_the_compiled_path_and_measure_reports(caplog):
    df = load_suite("mpls_person_search", nrows=1500)  # a datetime column ("date")
    result = mw.train(df, "personSearch", n_trials=1, families=["lightgbm"],
                      time_budget=120)
    X = df.drop(columns="personSearch").head(20)
    records = _records(X)
    assert isinstance(records[0]["date"], str) and records[0]["date"][:2] in ("20", "19")
    predictor = compile_predictor(result.model, result.contract)
    with caplog.at_level(logging.DEBUG, logger="mlwright.search.predictor"):
        _, proba = predictor.predict_records(records[:1])
    assert not [r for r in caplog.records if "pandas path" in r.getMessage()]
    np.testing.assert_allclose(proba, result.model.predict_proba(X.head(1)), atol=1e-9)
    figures = measure(result.model, X, repeat=20, contract=result.contract)
    assert figures["p50_us"] > 0 and figures["p90_us"] >= figures["p50_us"]
    assert figures["size_mb"] > 0
