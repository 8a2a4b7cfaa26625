"""One awkward table through the four paths that read contract values; they must agree.

The paths: the batch validator (``data.contract.validate``, pandas), the serving validator
(``serve.records.RecordValidator``, plain Python per record, both its per-record and its
column-wise mode), preprocessing (``prep.TablePrep`` on a frame and its compiled record form
``prep.fast``) and the monitor's reference (``monitor.reference.category_key``). Each cell of
the table has one expected outcome under the rules of ``data/contract/rules.py``: a parsed
value, "missing", or "invalid"; every path is checked against it, cell by cell.

Divergences this table found in the code before the rules had one home (each kept as a
case here):
* booleans: serving rejected ``t``/``f``/``y``/``n``, which prep reads; the batch validator
  also rejected ``yes``/``no``; the monitor counted ``t``, ``y``, ``1.0`` and any unreadable
  text (``maybe``, ``""``, ``2``) as ``false``, and the number 2 as ``true``;
* numbers: ``inf`` (text, or a float from a CSV upload) was a range warning in the batch
  validator but a type error when serving; serving read ``1_000`` and non-ASCII digits
  (``\u0663``) as numbers, the batch validator and prep did not, and the monitor counted
  them as numbers; digits beyond a double's range were a type error when serving;
* dates: the batch validator and prep read ``08/11/2016`` (as 11 August) and ``Nov 8, 2016``
  through pandas' format guessing, serving refused them; serving read ``20161108`` and
  ``2016-11-08t14:30``, the batch validator and prep did not; ``1500-01-01`` was accepted
  when serving, became missing in prep, and crashed the batch validator
  (OutOfBoundsDatetime) instead of being reported.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwright.data.contract import Contract, LogicalType, learn_contract, validate
from mlwright.datasets import load_suite
from mlwright.monitor.reference import category_key
from mlwright.prep import TablePrep, plan_columns
from mlwright.prep.fast import FallbackNeeded, RecordColumns, compile_table
from mlwright.serve.records import RecordValidator

MISSING = "missing"      # a missing value in a column never missing in training: an error
INVALID = "invalid"      # not a value of the column's type: an error
NA = "na"                # a missing value where missing is allowed
NAN = float("nan")
INF = float("inf")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# (cell as it arrives: text, as from a CSV read without type inference or a JSON client;
#  expected outcome)
BOOLEANS: list[tuple[Any, Any]] = [
    ("yes", True), ("no", False), ("t", True), ("f", False), ("1", True), ("0", False),
    ("1.0", True), ("0.0", False), ("TRUE", True), (" False ", False), ("Y", True),
    ("n", False), ("Yes", True), (True, True), (0, False), (1.0, True), ("", INVALID),
    ("maybe", INVALID), ("2", INVALID),
    ("-1", INVALID), ("nan", INVALID), ("tru", INVALID), (2, INVALID), (NAN, MISSING),
]
NUMBERS: list[tuple[Any, Any]] = [
    ("70.5", 70.5), (" 42 ", 42.0), ("1e5", 1e5), ("-1E-2", -0.01), ("+3.5", 3.5),
    (".5", 0.5), ("5.", 5.0), ("inf", INF), ("-inf", -INF), ("Infinity", INF),
    ("9" * 400, INF), ("-" + "9" * 400, -INF), ("1" * 30, 1.1111111111111111e29),
    ("NaN", INVALID), ("nan", INVALID), ("", INVALID), ("abc", INVALID), ("1,5", INVALID),
    ("0x10", INVALID), ("1_000", INVALID), ("\u0663", INVALID), ("12 3", INVALID),
    (NAN, MISSING),
]
DATES: list[tuple[Any, Any]] = [
    ("2016-11-08", _utc("2016-11-08T00:00:00+00:00")),
    ("2016-11-08T14:30", _utc("2016-11-08T14:30:00+00:00")),
    ("2016-11-08T14:30:00", _utc("2016-11-08T14:30:00+00:00")),
    ("2016-11-08 14:30:00", _utc("2016-11-08T14:30:00+00:00")),
    ("2016-11-08T14:30:00Z", _utc("2016-11-08T14:30:00+00:00")),
    ("2016-11-08T14:30:00+05:30", _utc("2016-11-08T09:00:00+00:00")),
    ("2016-11-08T14:30:00-08:00", _utc("2016-11-08T22:30:00+00:00")),
    ("2016-11-08T14:30:00.250Z", _utc("2016-11-08T14:30:00.250000+00:00")),
    ("2016-11-08T14:30:00.123456789Z", _utc("2016-11-08T14:30:00.123456+00:00")),
    ("2016-11-08T14:30:00+0530", _utc("2016-11-08T09:00:00+00:00")),
    (" 2016-11-08 ", _utc("2016-11-08T00:00:00+00:00")),
    ("", INVALID), ("not a date", INVALID), ("2016-02-30", INVALID),
    ("2016-11-08T25:00", INVALID), ("08/11/2016", INVALID), ("Nov 8, 2016", INVALID),
    ("1e5", INVALID), ("2016-11-08t14:30", INVALID), ("20161108", INVALID),
    ("1500-01-01", INVALID), ("9999-12-31", INVALID), (NAN, NA),
]
CITIES = ["Zürich", "São Paulo", "Kraków", "東京", "Ñuñoa"]
CATEGORIES: list[tuple[Any, Any]] = [
    ("Zürich", "Zürich"), ("東京", "東京"), ("Ñuñoa", "Ñuñoa"),
    ("Zu\u0308rich", "Zu\u0308rich"),  # the same letters decomposed: another category
    (" Kraków", " Kraków"), ("kraków", "kraków"), ("", ""), ("Αθήνα", "Αθήνα"),
    (NAN, MISSING),
]
CASES = {"paperless_billing": BOOLEANS, "monthly_charges": NUMBERS, "signed_up": DATES,
         "city": CATEGORIES}


def _missing(cell: Any) -> bool:
    return isinstance(cell, float) and math.isnan(cell)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    df = load_suite("telco_churn", nrows=300, seed=13)
    rng = np.random.default_rng(13)
    stamps = pd.Timestamp("2015-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 3 * 365 * 24, len(df)), unit="h")
    df["signed_up"] = pd.Series(stamps).where(rng.random(len(df)) > 0.05)
    df["city"] = rng.choice(CITIES, len(df))
    return df


@pytest.fixture(scope="module")
def contract(train: pd.DataFrame) -> Contract:
    return learn_contract(train, "churn")


@pytest.fixture(scope="module")
def base(train: pd.DataFrame) -> list[dict[str, Any]]:
    """Real rows (not the training ones) as JSON would carry them: one per cell of a case."""
    rows = load_suite("telco_churn", nrows=len(max(CASES.values(), key=len)), seed=7)
    rows = rows.drop(columns="churn")
    rows["signed_up"] = "2016-06-01T12:00:00Z"
    rows["city"] = "Zürich"
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in rows.to_dict("records")]


def test_the_rules_hold_for_the_cases(contract: Contract) -> None:
    kinds = {name: contract.column(name).dtype for name in CASES}
    assert kinds == {"paperless_billing": LogicalType.BOOLEAN,
                     "monthly_charges": LogicalType.FLOAT,
                     "signed_up": LogicalType.DATETIME, "city": LogicalType.STRING}
    assert not contract.column("monthly_charges").nullable
    assert contract.column("signed_up").nullable


def _frame(base: list[dict[str, Any]], column: str, cells: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(base[:len(cells)]).astype(object)
    frame[column] = pd.Series(cells, dtype=object)
    return frame


@pytest.mark.parametrize("column", list(CASES))
def test_batch_validator(contract: Contract, base: list[dict[str, Any]], column: str) -> None:
    cells, expected = zip(*CASES[column], strict=True)
    result = validate(_frame(base, column, list(cells)), contract).to_frame()
    errors = result[(result["column"] == column) & (result["severity"] == "error")]
    rules = dict(zip(errors["row"], errors["rule"], strict=True))
    got = [MISSING if rules.get(i) == "missing_value" else INVALID if i in rules else "ok"
           for i in range(len(cells))]
    want = [e if e in (MISSING, INVALID) else "ok" for e in expected]
    _agree(cells, got, want)


def _serve(validator: RecordValidator, records: list[dict[str, Any]], column: str
           ) -> list[Any]:
    clean, _warnings, errors = validator.validate(records)
    failed = {e.record: e.rule for e in errors if e.field == column}
    assert {e.record for e in errors} == set(failed), [e for e in errors if e.field != column]
    out: list[Any] = []
    kept = iter(clean)
    for i in range(len(records)):
        if i in failed:
            out.append(MISSING if failed[i] == "missing_value" else INVALID)
        else:
            value = next(kept)[column]
            out.append(NA if value is None else value)
    return out


@pytest.mark.parametrize("column", list(CASES))
def test_serving_validator(contract: Contract, base: list[dict[str, Any]],
                           column: str) -> None:
    cells, expected = zip(*CASES[column], strict=True)
    records = [{**row, column: None if _missing(cell) else cell}
               for row, cell in zip(base, cells, strict=False)]
    validator = RecordValidator(contract)
    assert len(records) >= validator.columnwise_from
    by_column = _serve(validator, [dict(r) for r in records], column)
    by_record = [_serve(validator, [dict(r)], column)[0] for r in records]
    _agree(cells, by_column, list(expected))
    _agree(cells, by_record, list(expected))


def _prep_values(prep: TablePrep, matrix: np.ndarray, column: str) -> list[Any]:
    names = list(prep.get_feature_names_out())
    if column == "signed_up":
        elapsed = matrix[:, names.index("signed_up__elapsed_days")]
        origin = prep.dates_.origin_["signed_up"]
        return [NA if np.isnan(d) else datetime.fromtimestamp(origin + d * 86_400.0, UTC)
                for d in elapsed]
    values = matrix[:, names.index(column)]
    if column == "city":
        labels = {code: label for label, code in prep.ordinal_["city"].items()}
        return [labels.get(int(v), "unknown") for v in values]
    return [NA if np.isnan(v) else v for v in values]


@pytest.mark.parametrize("column", list(CASES))
def test_prep(train: pd.DataFrame, contract: Contract, base: list[dict[str, Any]],
              column: str) -> None:
    """Prep reads the raw text as the rules do; what is not a value becomes missing."""
    X = train.drop(columns="churn")
    prep = TablePrep(plan_columns(contract.kinds, "churn"), "tree", "binary").fit(X)
    cells, expected = zip(*CASES[column], strict=True)
    known = set(CITIES)
    want = []
    for e in expected:
        if isinstance(e, datetime):
            e = e.replace(microsecond=0)  # date features keep whole seconds
        elif column == "city":
            e = e if e in known else "unknown"
        elif column == "paperless_billing" and e in (True, False):
            e = float(e)
        want.append(NA if e in (MISSING, INVALID) else e)
    frame = _frame(base, column, list(cells))
    _agree(cells, _prep_values(prep, prep.transform(frame), column), want,
                 close=True)
    records = [{k: (None if _missing(v) else v) for k, v in r.items()}
               for r in frame.to_dict("records")]
    try:
        compiled = compile_table(prep).transform(RecordColumns(records, list(X.columns)))
    except FallbackNeeded:  # the compiled form hands such values to the pandas path
        return
    _agree(cells, _prep_values(prep, compiled, column), want, close=True)


@pytest.mark.parametrize("column", ["paperless_billing", "monthly_charges", "city"])
def test_monitor_reference(contract: Contract, column: str) -> None:
    """The monitor counts a value under the key of its parsed value (what the reference
    counted); what is not a value of the type is counted under its own text."""
    dtype = contract.column(column).dtype
    cells, expected = zip(*CASES[column], strict=True)
    present = [(c, e) for c, e in zip(cells, expected, strict=True) if not _missing(c)]
    got = [category_key(c, dtype) for c, _ in present]  # missing values are counted apart
    want = [str(c) if e is INVALID else category_key(e, dtype) for c, e in present]
    _agree([c for c, _ in present], got, want)
    if dtype is LogicalType.BOOLEAN:
        assert {category_key(v, dtype) for v in (True, 1, 1.0, "true")} == {"true"}


def test_booleans_are_not_numbers(contract: Contract, base: list[dict[str, Any]]) -> None:
    """A bool column where a number belongs is a type error for both validators (the batch
    validator read a bool-typed column as 1/0, but refused the same values as text)."""
    frame = pd.DataFrame(base[:3])
    frame["tenure"] = [True, False, True]
    errors = validate(frame, contract).errors
    assert {(e.row, e.column, e.rule) for e in errors} == {(i, "tenure", "type")
                                                           for i in range(3)}
    _, _, issues = RecordValidator(contract).validate(frame.to_dict("records"))
    assert {(e.record, e.field, e.rule) for e in issues} == {(i, "tenure", "type")
                                                             for i in range(3)}


def _same(a: Any, b: Any, close: bool) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (close and math.isclose(a, b, rel_tol=1e-12)) or (
            math.isnan(a) and math.isnan(b))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return abs((a - b).total_seconds()) < (1e-3 if close else 1e-9)
    return type(a) is type(b) and a == b if isinstance(a, bool | str) else a == b


def _agree(cells: Any, got: list[Any], want: list[Any], close: bool = False) -> None:
    """Fails listing (cell, got, expected) of every cell where a path breaks the rules."""
    wrong = [(c, g, w) for c, g, w in zip(cells, got, want, strict=True)
             if not _same(g, w, close)]
    assert not wrong, "cell, got, expected:\n" + "\n".join(map(repr, wrong))


def test_the_fast_scalar_tests_are_the_documented_patterns() -> None:
    """``to_number``/``to_datetime`` test text without a regex (per-request cost); they must
    accept exactly what ``NUMBER``/``ISO_DATETIME`` describe."""
    from mlwright.data.contract import rules

    numbers = [c for c, _ in NUMBERS if isinstance(c, str)] + [
        "1", "-0", "+.5e-3", "1e", "e5", "--1", "+inf", "-Infinity", "iNf", "+nan", "1_0",
        "\uff11", "1.5.2", "0b1", "1e5000", "  7  ", "\u00a01"]
    for text in numbers:
        assert (rules.to_number(text) is not None) == bool(
            rules.NUMBER.fullmatch(text.strip())), text
    dates = [c for c, _ in DATES if isinstance(c, str)] + [
        "2016-11-08T14:30:00+05", "2016-11-08T14:30:00.1234567890Z", "2016-11-08T14:30:00,5",
        "2016-11-08T14:30:00+05:30:00", "2016-W45-2", "2016-313", "2016-11-08x14:30",
        "2016-11-08T1430", "2016-11-08Z", "\uff12016-11-08"]
    for text in dates:
        stamp = rules.to_datetime(text)
        shaped = bool(rules.ISO_DATETIME.fullmatch(text.strip()))
        assert stamp is None or shaped, text
        if shaped and text.strip()[:4] not in ("1500", "9999"):
            assert stamp is not None or text.strip() in ("2016-02-30", "2016-11-08T25:00"), text
