"""The data contract: learning on real rows, JSON round trip, validation, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mlwright
from mlwright.cli import main
from mlwright.cli._common import console
from mlwright.data import Contract, learn_contract, validate
from mlwright.data.contract import LogicalType, Policy, Severity
from mlwright.data.kinds import ColumnKind, infer_kinds
from mlwright.exceptions import ColumnNotFoundError, ConfigError, ContractError


@pytest.fixture(scope="module")
def telco_contract(telco: pd.DataFrame) -> Contract:
    return learn_contract(telco, "churn", source="telco slice")


@pytest.fixture(scope="module")
def trump_contract(trump: pd.DataFrame) -> Contract:
    return learn_contract(trump, "source")


# -- learning ----------------------------------------------------------------------------


def test_contract_records_columns_kinds_and_types(telco: pd.DataFrame,
                                                  telco_contract: Contract) -> None:
    assert telco_contract.names == list(telco.columns)
    assert telco_contract.kinds == infer_kinds(telco)  # kinds come from the one source
    assert telco_contract.column("tenure").dtype is LogicalType.INTEGER
    assert telco_contract.column("monthly_charges").dtype is LogicalType.FLOAT
    assert telco_contract.column("female").dtype is LogicalType.BOOLEAN  # 0/1 integers
    assert telco_contract.column("contract").dtype is LogicalType.STRING
    for spec in telco_contract.columns:
        assert spec.nullable == bool(telco[spec.name].isna().any()), spec.name


def test_contract_categories_ranges_and_target(telco: pd.DataFrame,
                                               telco_contract: Contract) -> None:
    contract_col = telco_contract.column("contract")
    assert contract_col.categories == sorted(telco["contract"].dropna().unique())
    assert contract_col.on_unknown is Policy.WARN
    assert telco_contract.column("female").categories == [False, True]
    assert telco_contract.column("female").on_unknown is Policy.REJECT
    tenure = telco_contract.column("tenure")
    assert (tenure.min, tenure.max) == (telco["tenure"].min(), telco["tenure"].max())
    target = telco_contract.target
    assert target is not None and target.name == "churn" and target.task == "binary"
    assert target.classes == sorted(telco["churn"].unique())
    assert "churn" not in telco_contract.feature_names
    assert telco_contract.feature_names == [c for c in telco.columns if c != "churn"]
    assert not telco_contract.column("churn").required


def test_reference_statistics_match_the_data(telco: pd.DataFrame,
                                             telco_contract: Contract) -> None:
    charges = telco["total_charges"]
    stats = telco_contract.column("total_charges").stats
    assert stats.missing == charges.isna().sum()
    assert stats.missing_rate == pytest.approx(charges.isna().mean())
    numeric = stats.numeric
    assert numeric is not None
    assert numeric.mean == pytest.approx(charges.mean())
    assert numeric.quantiles == sorted(numeric.quantiles)
    assert numeric.quantiles[numeric.quantile_probs.index(0.5)] == pytest.approx(charges.median())
    assert sum(numeric.bin_counts) == charges.notna().sum()
    assert len(numeric.bin_edges) == len(numeric.bin_counts) + 1
    freq = telco_contract.column("payment_method").stats.frequencies
    assert freq is not None
    assert dict(zip(freq.values, freq.counts, strict=True)) == (
        telco["payment_method"].value_counts().to_dict())


def test_text_and_datetime_statistics(trump: pd.DataFrame, trump_contract: Contract) -> None:
    text = trump_contract.column("text")
    assert text.kind is ColumnKind.TEXT and text.stats.text is not None
    assert text.stats.text.length_max == trump["text"].str.len().max()
    assert text.stats.text.length_mean == pytest.approx(trump["text"].str.len().mean())
    created = trump_contract.column("created_at")
    assert created.dtype is LogicalType.DATETIME
    assert pd.Timestamp(created.earliest) == trump["created_at"].min()
    assert pd.Timestamp(created.latest) == trump["created_at"].max()
    assert trump_contract.column("is_retweet").dtype is LogicalType.BOOLEAN
    assert trump_contract.target is not None
    assert trump_contract.target.classes == sorted(trump["source"].unique())


def test_contract_does_not_depend_on_row_order(telco: pd.DataFrame,
                                               telco_contract: Contract) -> None:
    shuffled = telco.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert learn_contract(shuffled, "churn").content() == telco_contract.content()


def test_policies_can_be_set_per_column(telco: pd.DataFrame) -> None:
    contract = learn_contract(telco, "churn", on_unknown={"contract": "reject"},
                              on_out_of_range="ignore")
    assert contract.column("contract").on_unknown is Policy.REJECT
    assert contract.column("internet_service").on_unknown is Policy.WARN
    assert contract.column("tenure").on_out_of_range is Policy.IGNORE
    with pytest.raises(ConfigError, match=r"'rejct'.*expected one of reject"):
        learn_contract(telco, "churn", on_unknown="rejct")
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'contract'"):
        learn_contract(telco, "churn", on_unknown={"contrakt": "reject"})


def test_bad_tables_are_refused_clearly(telco: pd.DataFrame) -> None:
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'churn'"):
        learn_contract(telco, "Churn ")
    with pytest.raises(ConfigError, match="needs a pandas DataFrame"):
        learn_contract(telco.to_dict(), "churn")  # type: ignore[arg-type]
    twice = pd.concat([telco[["tenure"]], telco[["tenure"]]], axis=1)
    with pytest.raises(ContractError, match=r"duplicate column names.*'tenure'"):
        learn_contract(twice)


def test_column_lookup_suggests_close_names(telco_contract: Contract) -> None:
    assert telco_contract.column("tenure").name == "tenure"
    assert "tenure" in telco_contract
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'tenure'"):
        telco_contract.column("tenur")


# -- persistence -------------------------------------------------------------------------


def test_json_round_trip(tmp_path: Path, telco_contract: Contract,
                         trump_contract: Contract) -> None:
    for contract in (telco_contract, trump_contract):
        path = contract.save(tmp_path / "nested" / "contract.json")
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert raw["format"] == "mlwright.contract" and raw["version"] == 1
        loaded = Contract.load(path)
        assert loaded == contract
        assert loaded.column("female" if "female" in loaded else "is_retweet").categories == (
            contract.column("female" if "female" in contract else "is_retweet").categories)


def test_other_version_is_refused_with_the_fix(tmp_path: Path, telco_contract: Contract) -> None:
    raw = json.loads(telco_contract.to_json())
    raw["version"] = 2
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ContractError) as info:
        Contract.load(path)
    message = str(info.value)
    assert "version 2" in message and "reads version 1" in message
    assert "Re-learn the contract" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"format": "mlwright.contract", "version": 1, "columns": [', "not valid JSON"),
        ('[1, 2, 3]', "not an mlwright data contract"),
        ('{"format": "something.else", "version": 1}', "not an mlwright data contract"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "contract.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContractError, match=expected):
        Contract.load(path)


def test_malformed_field_is_named(tmp_path: Path, telco_contract: Contract) -> None:
    raw = json.loads(telco_contract.to_json())
    raw["columns"][5]["kind"] = "numerc"
    del raw["n_rows"]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ContractError, match=r"malformed: .*columns\.5\.kind.*n_rows"):
        Contract.load(path)
    with pytest.raises(ContractError, match="No contract file at"):
        Contract.load(tmp_path / "absent.json")


# -- validation --------------------------------------------------------------------------


def test_training_rows_are_valid(telco: pd.DataFrame, trump: pd.DataFrame,
                                 telco_contract: Contract, trump_contract: Contract) -> None:
    for df, contract in ((telco, telco_contract), (trump, trump_contract)):
        result = validate(df, contract)
        assert result.ok and len(result) == 0, result.to_frame().head()


def _only(result, rule: str):  # type: ignore[no-untyped-def]
    found = [v for v in result if v.rule == rule]
    assert len(found) == 1, (rule, result.to_frame())
    return found[0]


def test_each_violation_is_found_by_row_and_column(telco: pd.DataFrame,
                                                   telco_contract: Contract) -> None:
    rows = telco.head(40).astype(object)
    rows.loc[3, "tenure"] = "abc"                       # wrong type
    rows.loc[5, "contract"] = "Ten year"                # unknown category (warn)
    rows.loc[7, "monthly_charges"] = 1000.0             # out of range (warn)
    rows.loc[9, "female"] = 3                           # not a boolean
    rows.loc[11, "payment_method"] = None               # missing, never missing in training
    rows.loc[13, "tenure"] = 12.5                       # a fraction in an integer column
    rows.loc[15, "churn"] = "Maybe"                     # unknown class (boolean: reject)
    rows = rows.drop(columns=["phone_service"]).assign(note="x")
    result = validate(rows, telco_contract)

    assert not result.ok
    typed = {(v.row, v.column): v for v in result if v.rule == "type"}
    assert typed[(3, "tenure")].severity is Severity.ERROR
    assert "expected a number, got 'abc'" in typed[(3, "tenure")].message
    assert "Row 3" in typed[(3, "tenure")].message
    assert typed[(9, "female")].value == 3
    unknown = {(v.row, v.column): v for v in result if v.rule == "unknown_category"}
    assert unknown[(5, "contract")].severity is Severity.WARNING
    assert unknown[(15, "churn")].severity is Severity.ERROR
    outside = _only(result, "out_of_range")
    assert (outside.row, outside.column, outside.value) == (7, "monthly_charges", 1000.0)
    missing = _only(result, "missing_value")
    assert (missing.row, missing.column, missing.severity) == (11, "payment_method", "error")
    fraction = _only(result, "not_integer")
    assert (fraction.row, fraction.column) == (13, "tenure")
    absent = _only(result, "missing_column")
    assert (absent.row, absent.column, absent.severity) == (None, "phone_service", "error")
    extra = _only(result, "extra_column")
    assert (extra.column, extra.severity) == ("note", "warning")

    frame = result.to_frame()
    assert list(frame.columns[:3]) == ["row", "column", "rule"]
    assert {"value", "expected", "message"} <= set(frame.columns)
    assert list(frame["severity"]) == sorted(frame["severity"])  # errors first
    assert len(result.errors) == result.n_errors == 5
    assert len(result.warnings) == result.n_warnings == 4
    summary = result.summary().set_index(["column", "rule"])
    assert summary.loc[("tenure", "type"), "count"] == 1
    assert sorted(result.rows_with_errors()) == [3, 9, 11, 15]


def test_datetime_and_boolean_violations(trump: pd.DataFrame, trump_contract: Contract) -> None:
    rows = trump.head(20).astype(object)
    rows.loc[2, "created_at"] = "not a date"
    rows.loc[4, "created_at"] = "2016-11-08T14:30:00+02:00"  # parseable, with a zone
    rows.loc[6, "is_retweet"] = "maybe"
    rows.loc[8, "is_retweet"] = "true"  # a boolean, but never seen in training
    result = validate(rows, trump_contract)
    bad_date = _only(result, "unparseable_datetime")
    assert (bad_date.row, bad_date.column, bad_date.value) == (2, "created_at", "not a date")
    not_bool = _only(result, "type")
    assert (not_bool.row, not_bool.column) == (6, "is_retweet")
    unseen = _only(result, "unknown_category")
    assert (unseen.row, unseen.column, unseen.severity) == (8, "is_retweet", "warning")
    assert result.n_errors == 2


def test_policies_decide_severity(telco: pd.DataFrame) -> None:
    rows = telco.head(10).astype(object)
    rows.loc[2, "contract"] = "Ten year"
    rows.loc[4, "monthly_charges"] = 1000.0
    strict = learn_contract(telco, "churn", on_unknown="reject", on_out_of_range="reject")
    result = validate(rows, strict)
    assert {(v.rule, v.severity) for v in result} == {
        ("unknown_category", "error"), ("out_of_range", "error")}
    lenient = learn_contract(telco, "churn", on_unknown="impute", on_out_of_range="ignore")
    result = validate(rows, lenient)
    assert result.ok
    imputed = _only(result, "unknown_category")
    assert imputed.action is Policy.IMPUTE and "imputed" in imputed.message
    assert not [v for v in result if v.rule == "out_of_range"]


def test_validation_of_numbers_sent_as_text(telco: pd.DataFrame,
                                            telco_contract: Contract) -> None:
    # What a JSON request or an all-text CSV gives: every value a string.
    as_text = telco.head(50).astype(str).astype(object).where(telco.head(50).notna(), None)
    assert validate(as_text, telco_contract).ok


def test_top_level_api_is_wired(telco: pd.DataFrame, telco_contract: Contract) -> None:
    assert mlwright.validate is validate and mlwright.Contract is Contract
    assert mlwright.learn_contract is learn_contract
    assert telco_contract.fingerprint == mlwright.fingerprint(telco)
    with pytest.raises(ConfigError, match="needs a Contract"):
        validate(telco, {"format": "mlwright.contract"})  # type: ignore[arg-type]


# -- command line ------------------------------------------------------------------------


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mlwright", *args])
    monkeypatch.setattr(console, "width", 200)
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_cli_contract_validate_and_exit_codes(tmp_path: Path, telco: pd.DataFrame,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "telco.csv"
    telco.to_csv(data, index=False)
    out_path = tmp_path / "contract.json"
    code, out, _ = _cli(monkeypatch, capsys, "contract", str(data), "--target", "churn",
                        "-o", str(out_path))
    assert code == 0 and out_path.exists()
    assert "payment_method" in out and "binary" in out
    assert Contract.load(out_path).target.name == "churn"  # type: ignore[union-attr]

    code, out, _ = _cli(monkeypatch, capsys, "validate", str(data), "--contract", str(out_path))
    assert code == 0 and "1,000 rows match" in out

    bad = telco.head(30).astype(object)
    bad.loc[4, "tenure"] = "abc"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, out, _ = _cli(monkeypatch, capsys, "validate", str(tmp_path / "bad.csv"),
                        "-c", str(out_path))
    assert code == 1
    assert "tenure" in out and "'abc'" in out and "1 error in 1 of 30 rows" in out

    warn_only = telco.head(30).astype(object)
    warn_only.loc[4, "contract"] = "Ten year"
    warn_only.to_csv(tmp_path / "warn.csv", index=False)
    code, out, _ = _cli(monkeypatch, capsys, "validate", str(tmp_path / "warn.csv"),
                        "-c", str(out_path))
    assert code == 0 and "Ten year" in out and "warnings" in out

    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "mlwright.contract", "version": 9}', encoding="utf-8")
    code, _, err = _cli(monkeypatch, capsys, "validate", str(data), "-c", str(broken))
    assert code == 2 and "version 9" in err and "Traceback" not in err


def test_installed_command_exits_2_on_a_bad_contract(tmp_path: Path,
                                                    telco: pd.DataFrame) -> None:
    data = tmp_path / "telco.csv"
    telco.head(20).to_csv(data, index=False)
    broken = tmp_path / "contract.json"
    broken.write_text("{not json", encoding="utf-8")
    command = Path(sys.executable).parent / "mlwright"
    done = subprocess.run([str(command), "validate", str(data), "--contract", str(broken)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "not valid JSON" in done.stderr and "Traceback" not in done.stderr


def test_cli_fingerprint_matches_the_library(tmp_path: Path, trump: pd.DataFrame,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "trump.parquet"
    trump.to_parquet(data, index=False)
    code, out, _ = _cli(monkeypatch, capsys, "fingerprint", str(data))
    assert code == 0
    assert out.strip() == mlwright.fingerprint(mlwright.load(data))
    assert out.strip().startswith("sha256:")
