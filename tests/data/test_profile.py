"""The data profile on real suite tables: statistics, warnings, JSON, CLI and the HTML page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mlwright
from browser import render  # tests/browser.py (tests/ is on sys.path, beside conftest.py)
from mlwright.cli import app
from mlwright.data.kinds import ColumnKind, Task, infer_kind
from mlwright.data.pii import find_pii, luhn_valid
from mlwright.data.profile import Profile, Severity, profile
from mlwright.datasets import SUITE, load_suite
from mlwright.exceptions import ColumnNotFoundError, EmptyDataError, TargetError


@pytest.fixture(scope="module")
def telco_profile(telco: pd.DataFrame) -> Profile:
    return profile(telco, "churn")


@pytest.fixture(scope="module")
def trump_raw() -> pd.DataFrame:
    """trump_tweet_source with its identifier kept (as shipped, before the protocol drops it)."""
    return load_suite("trump_tweet_source", keep=("id_str",), nrows=800)


@pytest.fixture(scope="module")
def trump_profile(trump_raw: pd.DataFrame) -> Profile:
    return profile(trump_raw, "source")


# ---------------------------------------------------------------------------- statistics

def test_column_statistics_match_pandas(telco: pd.DataFrame, telco_profile: Profile) -> None:
    p = telco_profile
    assert (p.n_rows, p.n_columns) == telco.shape
    assert p.duplicate_rows == int(telco.duplicated().sum())
    assert p.missing_cells == int(telco.isna().sum().sum())
    assert [c.name for c in p.columns] == list(telco.columns)
    for c in p.columns:
        col = telco[c.name]
        assert c.kind is infer_kind(col)
        assert c.missing_share == pytest.approx(col.isna().mean())
        assert c.distinct == col.nunique()
        counts = col.value_counts()
        assert c.top_values[0]["count"] == counts.iloc[0]
        assert {v["value"] for v in c.top_values if v["count"] == counts.iloc[0]} <= set(
            counts.index[counts == counts.iloc[0]])
        if c.kind is ColumnKind.NUMERIC:
            for q, value in c.stats["quantiles"].items():
                assert value == pytest.approx(col.quantile(float(q)))
            assert c.stats["mean"] == pytest.approx(col.mean())
            assert c.stats["std"] == pytest.approx(col.std())
            assert (c.stats["min"], c.stats["max"]) == (col.min(), col.max())
            assert sum(c.chart["counts"]) + c.chart["below"] + c.chart["above"] == col.count()


def test_table_and_target_facts(telco: pd.DataFrame, telco_profile: Profile) -> None:
    p = telco_profile
    assert p.task is Task.BINARY
    assert p["churn"].is_target and not p["tenure"].is_target
    counts = telco["churn"].value_counts()
    classes = {c["value"]: c["count"] for c in p.target_distribution["classes"]}
    assert classes == counts.to_dict()
    assert p.imbalance_ratio == pytest.approx(counts.max() / counts.min())
    assert p.memory_bytes == pytest.approx(telco.memory_usage(deep=True, index=False).sum(),
                                           rel=0.05)


def test_duplicate_rows_counted_exactly(telco: pd.DataFrame) -> None:
    doubled = pd.concat([telco, telco.head(37)], ignore_index=True)
    p = profile(doubled)
    assert p.duplicate_rows == int(doubled.duplicated().sum()) >= 37
    assert "duplicate_rows" in {w.code for w in p.warnings}


def test_regression_target_and_discrete_numbers() -> None:
    ames = load_suite("ames_housing", nrows=1500)
    p = profile(ames, "Sale_Price")
    assert p.task is Task.REGRESSION and p.imbalance_ratio is None
    assert p.target_distribution["stats"]["mean"] == pytest.approx(ames["Sale_Price"].mean())
    cars = p["Garage_Cars"]  # a few integer values: one bar per value, in value order
    assert cars.chart["type"] == "bar"
    assert cars.chart["labels"] == sorted(ames["Garage_Cars"].unique().tolist())
    assert cars.chart["counts"] == ames["Garage_Cars"].value_counts().sort_index().tolist()


# ---------------------------------------------------------------------------- warnings

def test_leakage_flagged_with_vehicle_search_only() -> None:
    leaky = load_suite("mpls_person_search", keep=("vehicleSearch",), nrows=10_000)
    p = profile(leaky, "personSearch")
    assert p.flagged("target_leakage") == ["vehicleSearch"]
    (warning,) = p.warnings_for("target_leakage")
    assert warning.severity is Severity.CRITICAL and warning.details["segment_class"] == "YES"
    assert p.warnings[0] is warning  # most severe first

    clean = load_suite("mpls_person_search", nrows=10_000)
    assert profile(clean, "personSearch").flagged("target_leakage") == []


@pytest.mark.parametrize(
    "name", ["telco_churn", "hpc_jobs", "trump_tweet_source", "diamonds", "ames_housing"])
def test_no_leakage_on_the_prepared_suite_tables(name: str) -> None:
    p = profile(load_suite(name), SUITE[name].target)
    assert p.flagged("target_leakage") == [], p.warnings_for("target_leakage")
    assert p.leakage, "every usable feature is scored"


def test_a_copy_of_the_target_is_near_perfect_leakage(telco: pd.DataFrame) -> None:
    df = telco.assign(churn_flag=telco["churn"].map({"Yes": 1, "No": 0}))
    p = profile(df, "churn")
    assert p.flagged("target_leakage") == ["churn_flag"]
    assert p.warnings_for("target_leakage")[0].details["verdict"] == "near_perfect"

    diamonds = load_suite("diamonds", nrows=5000)
    priced = diamonds.assign(price_eur=(diamonds["price"] * 0.92).round(-1))
    assert profile(priced, "price").flagged("target_leakage") == ["price_eur"]


def test_identifiers_flagged() -> None:
    stops = load_suite("mpls_person_search", keep=("idNum",), nrows=2000)
    assert profile(stops, "personSearch").flagged("identifier") == ["idNum"]
    tweets = load_suite("trump_tweet_source", keep=("id_str",), nrows=2000)
    flagged = profile(tweets, "source").flagged("identifier")
    # In a slice this small the reply-to user id (a foreign key) is unique enough to be one too.
    assert flagged[0] == "id_str" and set(flagged) <= {"id_str", "in_reply_to_user_id_str"}


def test_text_datetime_constant_and_missing_warnings(trump_raw: pd.DataFrame,
                                                     trump_profile: Profile) -> None:
    p = trump_profile
    assert p.flagged("free_text") == ["text"]
    text = p["text"]
    assert text.kind is ColumnKind.TEXT and text.stats["mean_words"] > 4
    assert text.stats["top_words"] and text.chart["type"] == "histogram"
    datetimes = [c.name for c in p.columns if c.kind is ColumnKind.DATETIME]
    assert datetimes == ["created_at"] and p.flagged("datetime") == datetimes
    assert p["created_at"].chart["type"] == "timeline"
    assert sum(p["created_at"].chart["counts"]) == trump_raw["created_at"].notna().sum()
    assert p.flagged("constant") == ["is_retweet"]
    heavy = [c for c in trump_raw.columns if trump_raw[c].isna().mean() > 0.5]
    assert p.flagged("high_missing") == heavy == ["in_reply_to_user_id_str"]


def test_every_datetime_column_is_reported() -> None:
    stops = load_suite("mpls_person_search", nrows=3000)
    stops["date_text"] = stops["date"].dt.strftime("%Y-%m-%d %H:%M:%S")  # dates held as text
    p = profile(stops, "personSearch")
    assert set(p.flagged("datetime")) == {"date", "date_text"}
    assert p["date_text"].stats["min"][:10] == stops["date"].min().strftime("%Y-%m-%d")


def test_pii_detected_by_pattern() -> None:
    n = 60
    rng = np.random.default_rng(0)

    def card(prefix: str) -> str:  # a Luhn-valid 16-digit number
        digits = prefix + "".join(str(d) for d in rng.integers(0, 10, 15 - len(prefix)))
        return next(digits + str(c) for c in range(10) if luhn_valid(digits + str(c)))

    cards = [card("4") for _ in range(n)]
    df = pd.DataFrame({
        "contact": [f"user{i}.name@example{i % 7}.com" for i in range(n)],
        "phone": [f"+1 (555) {100 + i:03d}-{rng.integers(1000, 9999)}" for i in range(n)],
        "card": [f"{c[:4]} {c[4:8]} {c[8:12]} {c[12:]}" for c in cards],
        "not_card": [c[:-1] + str((int(c[-1]) + 1) % 10) for c in cards],  # Luhn fails
        "order_date": [f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
        "code": [f"{17 + i % 3}-{i:06d}" for i in range(n)],
        "backup_email": [f"b{i}@example.net" if i % 10 == 0 else None for i in range(n)],
        "y": ["a", "b"] * (n // 2),
    })
    p = profile(df, "y")
    found = {w.column: w.details["pii"] for w in p.warnings_for("pii")}
    assert found == {"contact": "email", "phone": "phone", "card": "card_number",
                     "backup_email": "email"}  # 90% missing, 100% of the rest are e-mails
    assert p.warnings_for("pii", "card")[0].severity is Severity.CRITICAL
    assert all(w.details["share"] == 1.0 for w in p.warnings_for("pii"))


def test_pii_patterns() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert find_pii("write to jane.doe@mail.example.org today") == {"email"}
    assert find_pii("call 1-800-555-0199 or +44 20 7946 0958") == {"phone"}
    assert find_pii("card 4111-1111-1111-1111") == {"card_number"}
    for clean in ("2017-01-01 06:00:42", "17-000003", "id 6971079756", "@realDonaldTrump",
                  "$1,234,567.89", "4111 1111 1111 1112"):
        assert find_pii(clean) == set(), clean


def test_real_text_mentioning_a_few_phones_is_not_a_pii_column(trump_profile: Profile) -> None:
    # Tweets quote a hotline now and then (under 0.1% of them); that is not a column of PII.
    assert trump_profile.flagged("pii") == []


# ---------------------------------------------------------------------------- errors

def test_bad_input_gives_clear_errors(telco: pd.DataFrame) -> None:
    with pytest.raises(ColumnNotFoundError,
                       match=r"'Churn' is not in the table\. Did you mean 'churn'"):
        profile(telco, "Churn")
    with pytest.raises(TargetError, match="single value"):
        profile(telco.assign(churn="No"), "churn")
    with pytest.raises(EmptyDataError, match="empty table"):
        profile(telco.head(0))


# ---------------------------------------------------------------------------- outputs

def test_json_round_trips(trump_profile: Profile, tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    text = trump_profile.to_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))  # strict JSON: no NaN
    assert data == json.loads(text) == trump_profile.to_dict()
    again = Profile.read_json(path)
    assert again.to_dict() == trump_profile.to_dict()
    assert again["text"].kind is ColumnKind.TEXT and again.task is Task.MULTICLASS
    assert again.warnings[0].severity is trump_profile.warnings[0].severity
    assert mlwright.profile is profile


def test_cli_writes_json_and_html(telco: pd.DataFrame, tmp_path: Path) -> None:
    csv = tmp_path / "telco.csv"
    telco.to_csv(csv, index=False)
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["profile", str(csv), "--target", "churn", "--out",
                                      str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "profile.json").read_text(encoding="utf-8"))
    assert data["n_rows"] == len(telco) and data["task"] == "binary"
    html = (out / "profile.html").read_text(encoding="utf-8")
    assert html.count("* plotly.js v") == 1 and "<script src" not in html  # inlined once
    assert "profile.json" in result.output and "tenure" in result.output


def test_cli_bad_target_is_one_clear_error(telco: pd.DataFrame, tmp_path: Path) -> None:
    csv = tmp_path / "telco.csv"
    telco.head(100).to_csv(csv, index=False)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlwright"), "profile", str(csv), "--target", "churnn",
         "--out", str(tmp_path / "r")], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Did you mean 'churn'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r" / "profile.html").exists()


def test_html_renders_in_chromium(trump_profile: Profile, tmp_path: Path) -> None:
    path = trump_profile.to_html(tmp_path / "profile.html")
    errors, page = render(path)
    assert errors == []
    assert page.requests == []  # nothing fetched from the network
    # One chart per column plus the target's distribution, every one drawn.
    assert page.chart_divs == len(trump_profile.columns) + 1
    assert len(page.charts) == page.chart_divs and page.unrendered == []
    assert page.text.index("Warnings") < page.text.index("Overview") < page.text.index(
        "Column details")
    for w in trump_profile.warnings:
        assert w.message in page.text
