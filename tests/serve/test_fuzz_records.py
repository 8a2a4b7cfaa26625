"""Fuzzing the JSON record validator against the reference: for any values a client sends,
``serve.records.RecordValidator`` (both its per-record and its column-wise mode) refuses,
warns about and converts exactly what ``data.contract.validate`` and the column parsers of
``data/contract/rules.py`` say of the same values in a table.

The contracts are learned from real telco_churn rows (plus a date column), under each
policy; the values are drawn per field from ``fuzz_values.VALUES`` (every JSON type, text
that reads or nearly reads as a number, boolean or date, non-ASCII, huge and non-finite
numbers, nested lists and objects, Python dates). Bugs found, each kept as a case below:
the reference crashed on a list or an object in a cell (unhashable, from a Parquet list or
struct column) and read one as text in a string column where the record validator refused
it; a number or boolean in a date column was ``unparseable_datetime`` for the reference and
``type`` for the record validator.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fuzz_values import DEEP, QUICK, contracts, requests, with_dates
from hypothesis import given
from hypothesis import strategies as st

from mlwright.data.contract import Contract, LogicalType, Policy, rules, validate
from mlwright.serve.records import RecordValidator


@pytest.fixture(scope="module")
def table(telco: pd.DataFrame) -> pd.DataFrame:
    return with_dates(telco)


@pytest.fixture(scope="module")
def by_policy(table: pd.DataFrame) -> dict[str, Contract]:
    return contracts(table.iloc[:600])


@pytest.fixture(scope="module")
def rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Real rows the contracts did not learn from, as JSON carries them."""
    held_out = table.iloc[600:700].drop(columns="churn")
    held_out["signed_up"] = held_out["signed_up"].map(
        lambda t: None if pd.isna(t) else t.isoformat())
    return held_out.astype(object).where(held_out.notna(), None).to_dict("records")


def _served(validator: RecordValidator, records: list[dict[str, Any]]) -> tuple[
        set[tuple[int, str, str]], set[tuple[int, str, str]], dict[int, dict[str, Any]]]:
    """(errors, warnings, clean records by index) of the record validator."""
    clean, warnings, errors = validator.validate([dict(r) for r in records])
    failed = {e.record for e in errors}
    assert errors.records == len(failed)  # under the cap, every failed record is listed
    kept = [i for i in range(len(records)) if i not in failed]
    assert len(clean) == len(kept)
    return ({(e.record, e.field, e.rule) for e in errors},
            {(w.record, w.field, w.rule) for w in warnings if w.record >= 0},
            dict(zip(kept, clean, strict=True)))


def _reference(contract: Contract, records: list[dict[str, Any]]) -> tuple[
        pd.DataFrame, set[tuple[int, str, str]], set[tuple[int, str, str]]]:
    """(the table, errors, warnings) of the batch validator on the same values: each
    column of Python objects as given (None for null)."""
    frame = pd.DataFrame({name: pd.Series([r[name] for r in records], dtype=object)
                          for name in contract.feature_names})
    result = validate(frame, contract)
    return (frame, {(v.row, v.column, v.rule) for v in result.errors},
            {(v.row, v.column, v.rule) for v in result.warnings})


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond a double reads as ±inf (rules.parse_numbers)
        return math.inf if value > 0 else -math.inf


def _canonical(spec_dtype: LogicalType, column: pd.Series) -> list[Any]:
    """What the reference's column parser reads each value as (None: missing or invalid)."""
    missing = column.isna().to_numpy()
    if spec_dtype in (LogicalType.INTEGER, LogicalType.FLOAT):
        return [None if math.isnan(v) else v for v in rules.parse_numbers(column)]
    if spec_dtype is LogicalType.BOOLEAN:
        values, parsed = rules.parse_booleans(column)
        return [bool(v) if p and not m else None
                for v, p, m in zip(values, parsed, missing, strict=True)]
    if spec_dtype is LogicalType.DATETIME:
        return [None if pd.isna(t) else t for t in rules.parse_datetimes(column)]
    text, parsed = rules.parse_strings(column)
    return [t if p and not m else None for t, p, m in zip(text, parsed, missing, strict=True)]


def _same(dtype: LogicalType, got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if dtype in (LogicalType.INTEGER, LogicalType.FLOAT):
        return type(got) in (int, float) and _as_float(got) == want
    if dtype is LogicalType.DATETIME:
        return isinstance(got, datetime) and pd.Timestamp(got) == want
    return type(got) is type(want) and got == want


def check_agreement(contract: Contract, records: list[dict[str, Any]]) -> None:
    """The record validator's answer on ``records`` is the reference's, cell by cell."""
    validator = RecordValidator(contract, max_errors=10**6)
    errors, warnings, clean = _served(validator, records)
    frame, want_errors, want_warnings = _reference(contract, records)
    assert errors == want_errors, (records, errors ^ want_errors)
    # A refused record's warnings are not looked for (its answer is the errors).
    want_warnings = {w for w in want_warnings if w[0] in clean}
    assert warnings == want_warnings, (records, warnings ^ want_warnings)
    imputed = {(row, field) for row, field, rule in warnings if rule in _POLICY_OF
               and getattr(contract.column(field), _POLICY_OF[rule]) is Policy.IMPUTE}
    for name in contract.feature_names:
        dtype = contract.column(name).dtype
        want = _canonical(dtype, frame[name])
        for i, record in clean.items():
            if (i, name) not in imputed:
                assert _same(dtype, record[name], want[i]), (name, records[i][name],
                                                             record[name], want[i])


_POLICY_OF = {"unknown_category": "on_unknown", "out_of_range": "on_out_of_range",
              "missing_value": "on_missing"}


def _property(by_policy: dict[str, Contract], rows: list[dict[str, Any]]) -> Any:
    names = by_policy["default"].feature_names

    @given(policy=st.sampled_from(sorted(by_policy)), records=requests(rows, names))
    def agree(policy: str, records: list[dict[str, Any]]) -> None:
        check_agreement(by_policy[policy], records)

    return agree


def test_record_validator_agrees_with_the_reference(by_policy: dict[str, Contract],
                                                    rows: list[dict[str, Any]]) -> None:
    QUICK(_property(by_policy, rows))()


@pytest.mark.deep
def test_record_validator_agrees_with_the_reference_deeply(
        by_policy: dict[str, Contract], rows: list[dict[str, Any]]) -> None:
    DEEP(_property(by_policy, rows))()


# -- the bugs the fuzzing found, kept as plain cases ------------------------------------------


@pytest.mark.parametrize("column", ["female", "tenure", "contract", "signed_up"])
def test_a_list_or_object_is_a_type_error_for_both(by_policy: dict[str, Contract],
                                                   rows: list[dict[str, Any]],
                                                   column: str) -> None:
    """The reference crashed (unhashable) on a list or an object in a cell, and read one as
    text in a string column, where the record validator refused it."""
    values = [[], [1, "a"], {"a": 1}, {}, [], {"a": 1}, [1, "a"], {}, []]
    records = [{**row, column: value} for row, value in zip(rows, values, strict=False)]
    for n in (1, 9):  # per record and column-wise
        check_agreement(by_policy["default"], records[:n])
    _, errors, _ = _reference(by_policy["default"], records)
    assert errors == {(i, column, "type") for i in range(9)}
    frame = pd.DataFrame({column: pd.Series(values, dtype=object)})
    messages = [v.message for v in validate(frame, by_policy["default"]).errors
                if v.column == column]
    assert len(messages) == 9 and all("expected a" in m for m in messages)


def test_a_date_column_refuses_other_types_as_type_errors(by_policy: dict[str, Contract],
                                                          rows: list[dict[str, Any]]) -> None:
    """A number or boolean where a date belongs is a type error (``not_datetime``) for both
    validators; the reference called it ``unparseable_datetime``. A date object is a date."""
    values = [False, 3, 2.5, date(2016, 1, 1), "soon", True, 0, 1e300, "2016-01-01"]
    records = [{**row, "signed_up": value} for row, value in zip(rows, values, strict=False)]
    for n in (1, 9):
        check_agreement(by_policy["default"], records[:n])
    _, errors, _ = _reference(by_policy["default"], records)
    assert errors == {(i, "signed_up", "type") for i in (0, 1, 2, 5, 6, 7)} | {
        (4, "signed_up", "unparseable_datetime")}


def test_an_int_beyond_a_double_among_floats(by_policy: dict[str, Contract],
                                             rows: list[dict[str, Any]]) -> None:
    """The column-wise path summed a number column to test it at once: an int beyond a
    double among floats raised OverflowError out of the validator; and an int beyond a
    double reached the model, whose float conversion failed (a CSV upload's 200 with no
    rows). Now it is ±inf, out of range, as the reference says."""
    values = [10**400, 20.5, -(10**400), 30.25, 20.5, 20.5, 40.0, 50.0, 10**400]
    records = [{**row, "monthly_charges": v} for row, v in zip(rows, values, strict=False)]
    for n in (1, 9):
        check_agreement(by_policy["default"], records[:n])
    _, _, warnings = _reference(by_policy["default"], records)
    assert {(i, c) for i, c, rule in warnings if rule == "out_of_range"} == {
        (0, "monthly_charges"), (2, "monthly_charges"), (8, "monthly_charges")}
    # The model gets ±inf (as for the digits written as text), never an int it cannot read,
    # with a range to check or without one (the ignore policy).
    for policy in ("default", "ignore"):
        for n in (1, 9):
            clean, _, errors = RecordValidator(by_policy[policy]).validate(records[:n])
            assert not errors and clean[0]["monthly_charges"] == math.inf
            assert n == 1 or clean[2]["monthly_charges"] == -math.inf


def test_text_and_numbers_in_a_string_column_are_read_alike() -> None:
    """``rules.to_string`` is the one reading of a string column's values."""
    assert [rules.to_string(v) for v in ("a", 1, 1.5, True, np.int64(3), np.float64(2.5),
                                          np.bool_(False))] == [
        "a", "1", "1.5", "True", "3", "2.5", "False"]
    assert [rules.to_string(v) for v in ([], {}, date(2016, 1, 1), b"x")] == [None] * 4
