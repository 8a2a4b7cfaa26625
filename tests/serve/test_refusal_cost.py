"""Refusing a request is cheap and its counts are exact (issue 16, point 1): every failed
record is counted, the errors of the first ones are listed in full, and the message says
how many refused records are not listed."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from serve_helpers import records

from mlwright.data.contract import Contract
from mlwright.serve.records import RecordValidator


@pytest.fixture(scope="module")
def validator(run_a: Path) -> RecordValidator:
    return RecordValidator(Contract.load(run_a / "contract.json"))


def _failed_one_by_one(validator: RecordValidator, rows: list) -> int:
    """The reference count: each record validated on its own."""
    return sum(bool(validator.validate([row])[2]) for row in rows)


def test_every_empty_record_is_counted_and_the_rest_not_listed(
        validator: RecordValidator) -> None:
    rows = [{}] * 100_001
    started = time.perf_counter()
    clean, warnings, errors = validator.validate(rows)
    elapsed = time.perf_counter() - started
    assert clean == [] and warnings == []
    assert errors.records == 100_001
    assert len(errors) == validator.max_errors
    # Each empty record misses every feature: the list covers the first records in full.
    per_record = len(validator.names)
    assert errors.listed == -(-validator.max_errors // per_record)
    assert [e.record for e in errors] == sorted(e.record for e in errors)
    assert {e.rule for e in errors} == {"missing_field"}
    text = errors.describe(len(rows))
    assert text.startswith("100,001 of 100,001 records break the data contract")
    assert f"the other {100_001 - errors.listed:,} records are not listed" in text
    assert elapsed < 5, elapsed  # a hang guard: the old error path took minutes here


def test_counts_match_record_by_record_on_a_mixed_request(
        validator: RecordValidator, telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(300))
    for i in range(0, 300, 3):                    # every third record broken...
        rows[i] = dict(rows[i])
        rows[i][validator.names[i % len(validator.names)]] = [i]   # ...in a different field
    for i in range(1, 300, 7):
        rows[i] = dict(rows[i], tenure="soon", monthly_charges="lots")  # two bad fields
    expected = _failed_one_by_one(validator, rows)
    clean, _, errors = validator.validate(rows)
    assert errors.records == expected == 300 - len(clean)
    validator_rows = RecordValidator(validator.contract)
    validator_rows.columnwise_from = len(rows) + 1  # the record-by-record path agrees
    assert validator_rows.validate(rows)[2].records == expected
    # The list holds every error of the first failed records, in order: record 1 (two
    # fields) is listed with both.
    first = [(e.record, e.field) for e in errors[:3]]
    assert first == [(0, validator.names[0]), (1, "tenure"), (1, "monthly_charges")]
    assert errors.describe(300).startswith(f"{expected} of 300 records break")
    assert validator.validate(rows)[0] == clean  # the memo of refused values changes nothing
    rows[2] = "not a record"  # one non-object: the record-by-record path, one more failure
    assert validator.validate(rows)[2].records == expected + 1


def test_a_small_request_lists_everything(validator: RecordValidator,
                                          telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(20))
    rows[4] = dict(rows[4], tenure="ten")
    _, _, errors = validator.validate(rows)
    assert errors.records == errors.listed == 1
    assert errors.describe(20) == "1 of 20 records break the data contract"


def test_warnings_of_refused_records_are_left_out(validator: RecordValidator,
                                                  telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(10))
    rows[3] = dict(rows[3], monthly_charges=10_000.0, tenure="ten")  # warning + error
    rows[6] = dict(rows[6], monthly_charges=10_000.0)                # warning only
    _, warnings, errors = validator.validate(rows)
    assert errors.records == 1
    assert {(w.record, w.rule) for w in warnings} == {(6, "out_of_range")}


def test_fields_outside_the_contract_are_named_up_to_a_limit(
        validator: RecordValidator, telco_rows: pd.DataFrame) -> None:
    row = records(telco_rows.head(1))[0]
    rows = [dict(row, **{f"extra_{i:03d}": i}) for i in range(100)]
    _, warnings, errors = validator.validate(rows)
    assert errors == []
    extra = [w for w in warnings if w.rule == "extra_field"]
    assert len(extra) == validator.max_extra_shown + 1
    assert extra[0].field == "extra_000"
    assert extra[-1].message.startswith(f"{100 - validator.max_extra_shown} more fields")
