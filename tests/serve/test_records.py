"""RecordValidator: per-record contract checks without pandas, policy by policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serve_helpers import records

from mlwright.data.contract import Contract, learn_contract, validate
from mlwright.serve.records import RecordValidator


@pytest.fixture(scope="module")
def contract(run_a: Path) -> Contract:
    return Contract.load(run_a / "contract.json")


def test_clean_records_pass_in_training_order(contract: Contract,
                                              telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(50))
    clean, _warnings, errors = RecordValidator(contract).validate(rows)
    assert errors == []
    assert len(clean) == 50
    assert list(clean[0]) == contract.feature_names
    # Booleans stored as 0/1 come out as booleans, as the contract types them.
    assert isinstance(clean[0]["female"], bool)


def test_errors_name_the_field_and_record(contract: Contract,
                                          telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(3))
    rows[1]["tenure"] = "ten"
    del rows[2]["contract"]
    rows[2]["partner"] = "maybe"
    _, _, errors = RecordValidator(contract).validate(rows)
    found = {(e.record, e.field, e.rule) for e in errors}
    assert found == {(1, "tenure", "type"), (2, "contract", "missing_field"),
                     (2, "partner", "type")}
    assert all(e.severity == "error" and e.message for e in errors)


def test_default_policies_warn_on_unknown_category_and_range(
        contract: Contract, telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(1))
    rows[0]["internet_service"] = "Satellite"
    rows[0]["monthly_charges"] = 10_000.0
    rows[0]["not_a_column"] = 1
    clean, warnings, errors = RecordValidator(contract).validate(rows)
    assert errors == []
    rules = {(w.field, w.rule) for w in warnings}
    assert ("internet_service", "unknown_category") in rules
    assert ("monthly_charges", "out_of_range") in rules
    assert ("not_a_column", "extra_field") in rules
    assert clean[0]["internet_service"] == "Satellite"  # warn keeps the value


def test_reject_and_impute_policies() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue"], 200),
        "size": rng.normal(10, 2, 200).round(2),
        "count": rng.integers(0, 50, 200),
    })
    contract = learn_contract(df, on_unknown={"colour": "reject"},
                              on_out_of_range={"size": "impute", "count": "reject"},
                              on_missing={"size": "impute"})
    validator = RecordValidator(contract)
    good = {"colour": "red", "size": 10.0, "count": 3}
    _, _, errors = validator.validate([{**good, "colour": "purple"}, {**good, "count": 1000}])
    assert {(e.record, e.field, e.rule) for e in errors} == {
        (0, "colour", "unknown_category"), (1, "count", "out_of_range")}
    clean, warnings, errors = validator.validate([{**good, "size": 1e6}, {**good, "size": None}])
    assert errors == []
    median = float(np.quantile(df["size"], 0.5))
    assert clean[0]["size"] == pytest.approx(median)
    assert clean[1]["size"] == pytest.approx(median)
    assert {(w.record, w.rule) for w in warnings} == {(0, "out_of_range"), (1, "missing_value")}


def test_agrees_with_the_vectorised_validate(contract: Contract,
                                             telco_rows: pd.DataFrame) -> None:
    frame = telco_rows.head(40).copy()
    frame["tenure"] = frame["tenure"].astype(object)
    frame.loc[3, "tenure"] = "abc"
    frame.loc[7, "partner"] = 5
    frame.loc[11, "monthly_charges"] = None
    vectorised = validate(frame, contract)
    expected = {(int(v.row), v.column) for v in vectorised.errors}
    _, _, errors = RecordValidator(contract).validate(records(frame))
    assert {(e.record, e.field) for e in errors} == expected
    assert expected == {(3, "tenure"), (7, "partner"), (11, "monthly_charges")}


def test_datetimes_are_parsed_and_checked() -> None:
    df = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=50, freq="D"),
                       "x": np.arange(50.0)})
    validator = RecordValidator(learn_contract(df))
    clean, _, errors = validator.validate([{"when": "2020-01-05T10:00:00Z", "x": 1.0},
                                           {"when": "yesterday", "x": 1.0},
                                           {"when": 12, "x": 1.0}])
    assert clean[0]["when"].year == 2020 and clean[0]["when"].tzinfo is not None
    assert {(e.record, e.rule) for e in errors} == {(1, "unparseable_datetime"), (2, "type")}
    # Parquet uploads give Timestamps and dates; some valid ISO strings leave UTC's range.
    import datetime as dt

    clean, _, errors = validator.validate([
        {"when": pd.Timestamp("2020-01-05 10:00"), "x": 1.0},
        {"when": pd.Timestamp("2020-01-05 12:00", tz="Europe/Paris"), "x": 1.0},
        {"when": dt.date(2020, 1, 5), "x": 1.0},
        {"when": "0001-01-01T00:00:00+05:00", "x": 1.0},
        {"when": "9999-12-31T23:59:59-14:00", "x": 1.0}])
    assert [c["when"].isoformat() for c in clean] == [
        "2020-01-05T10:00:00+00:00", "2020-01-05T11:00:00+00:00", "2020-01-05T00:00:00+00:00"]
    assert {(e.record, e.rule) for e in errors} == {(3, "unparseable_datetime"),
                                                    (4, "unparseable_datetime")}


def test_non_object_records_are_errors(contract: Contract) -> None:
    clean, _, errors = RecordValidator(contract).validate([1, "x", None])
    assert clean == [] and [e.record for e in errors] == [0, 1, 2]


def test_column_by_column_path_gives_what_record_by_record_gives(
        contract: Contract, telco_rows: pd.DataFrame) -> None:
    # Many-record requests are checked column by column; the answer must not change.
    rows = records(telco_rows.head(60))
    rows[2]["tenure"] = "ten"                    # wrong type: error
    rows[5]["contract"] = "Lifetime"             # unknown category: warning by default
    rows[9]["monthly_charges"] = 10_000.0        # out of range: warning by default
    rows[12]["monthly_charges"] = float("nan")   # not a finite number: error
    rows[14]["senior_citizen"] = "yes"           # boolean as text: converted
    rows[20]["tenure"] = 12.5                    # integer column: not-integer warning
    rows[21].pop("partner")                      # missing field
    rows[30]["favourite_colour"] = "blue"        # extra field: warning
    for row in rows:                             # JSON booleans, and one 1 among them:
        row["dependents"] = bool(row["dependents"])  # 1 == True, but it must become True
    rows[40]["dependents"] = 1
    validator = RecordValidator(contract)
    assert len(rows) >= validator.columnwise_from
    by_column = validator.validate(rows)
    validator.columnwise_from = len(rows) + 1  # the same request, record by record
    by_record = validator.validate(rows)
    order = {name: k for k, name in enumerate(validator.names)}

    def key(issue):
        return (issue.record, order.get(issue.field, -1), issue.rule)

    assert by_column[0] == by_record[0]          # the same clean records, in order
    assert all(type(r["dependents"]) is bool for r in by_column[0])
    for got, want in zip(by_column[1:], by_record[1:], strict=True):
        assert sorted(map(key, got)) == sorted(map(key, want))
        assert {i.message for i in got} == {i.message for i in want}
    assert {(e.record, e.field) for e in by_column[2]} >= {(2, "tenure"),
                                                           (12, "monthly_charges")}
