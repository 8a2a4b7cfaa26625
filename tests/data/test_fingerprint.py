"""The content fingerprint: what must not change it, and what must."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwright.data import load
from mlwright.data.fingerprint import fingerprint
from mlwright.exceptions import ConfigError


def test_format_and_determinism(telco: pd.DataFrame) -> None:
    first = fingerprint(telco)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", first)
    assert fingerprint(telco.copy()) == first


# -- invariances -------------------------------------------------------------------------


def test_row_order_index_and_column_order_do_not_matter(telco: pd.DataFrame,
                                                        trump: pd.DataFrame) -> None:
    for df in (telco, trump):
        base = fingerprint(df)
        assert fingerprint(df.sample(frac=1.0, random_state=7)) == base  # shuffled, old index
        assert fingerprint(df.iloc[::-1].reset_index(drop=True)) == base
        assert fingerprint(df[list(reversed(df.columns))]) == base
        assert fingerprint(df.set_axis(np.arange(len(df)) * 3 + 11)) == base


def test_storage_format_does_not_matter(tmp_path: Path, trump: pd.DataFrame) -> None:
    trump.to_parquet(tmp_path / "t.parquet", index=False)
    trump.to_csv(tmp_path / "t.csv", index=False)
    base = fingerprint(trump)
    assert fingerprint(load(tmp_path / "t.parquet")) == base
    assert fingerprint(load(tmp_path / "t.csv")) == base


def test_storage_types_of_the_same_values_do_not_matter(trump: pd.DataFrame) -> None:
    base = fingerprint(trump)
    same = {
        "ints stored as float": trump.assign(retweet_count=trump["retweet_count"] * 1.0),
        "nullable Int64": trump.assign(retweet_count=trump["retweet_count"].astype("Int64")),
        "booleans as 0/1": trump.assign(is_retweet=trump["is_retweet"].astype(np.int64)),
        "nullable boolean": trump.assign(is_retweet=trump["is_retweet"].astype("boolean")),
        "categorical text": trump.assign(source=trump["source"].astype("category")),
        "pandas str dtype": trump.assign(source=trump["source"].astype("str")),
        "naive UTC datetimes": trump.assign(
            created_at=trump["created_at"].dt.tz_localize(None)),
        "another zone": trump.assign(
            created_at=trump["created_at"].dt.tz_convert("America/New_York")),
        "microseconds": trump.assign(
            created_at=trump["created_at"].astype("datetime64[us, UTC]")),
    }
    for what, df in same.items():
        assert fingerprint(df) == base, what


def test_every_kind_of_missing_is_the_same() -> None:
    # Exact property: one row with each spelling of "missing" in each kind of column.
    a = pd.DataFrame({"n": [1.0, np.nan], "t": ["x", None], "d": pd.to_datetime(["2020-01-01",
                                                                                  None])})
    b = pd.DataFrame({
        "n": pd.array([1, None], dtype="Int64"),
        "t": pd.Series(["x", np.nan], dtype=object),
        "d": pd.Series([pd.Timestamp("2020-01-01", tz="UTC"), pd.NaT]),
    })
    c = pd.DataFrame({"n": pd.Series([1, pd.NA], dtype=object),
                      "t": pd.Series(["x", pd.NA], dtype="str"),
                      "d": pd.Series([pd.Timestamp("2020-01-01"), None], dtype=object)})
    assert fingerprint(a) == fingerprint(b) == fingerprint(c)
    assert fingerprint(pd.DataFrame({"x": [-0.0, 2.0]})) == fingerprint(
        pd.DataFrame({"x": [0, 2]}))


def test_text_hashing_does_not_depend_on_how_values_repeat() -> None:
    # The text hasher picks a strategy from the first rows; both must give the same result.
    repeated_first = pd.DataFrame({"t": ["same"] * 12_000 + [f"id-{i}" for i in range(12_000)]})
    assert fingerprint(repeated_first) == fingerprint(repeated_first.iloc[::-1])


# -- sensitivities -----------------------------------------------------------------------


def test_one_changed_value_changes_it(telco: pd.DataFrame, trump: pd.DataFrame) -> None:
    base_telco, base_trump = fingerprint(telco), fingerprint(trump)
    changed = telco.copy()
    changed.loc[500, "monthly_charges"] += 0.01
    assert fingerprint(changed) != base_telco
    changed = telco.copy()
    other = "Two year" if telco.loc[0, "contract"] != "Two year" else "One year"
    changed.loc[0, "contract"] = other
    assert fingerprint(changed) != base_telco
    changed = telco.copy()
    changed.loc[10, "tenure"] = None  # a value becoming missing
    assert fingerprint(changed) != base_telco
    changed = trump.copy()
    changed.loc[3, "text"] = changed.loc[3, "text"] + " "  # one trailing space
    assert fingerprint(changed) != base_trump
    changed = trump.copy()
    changed.loc[3, "created_at"] += pd.Timedelta(nanoseconds=1)
    assert fingerprint(changed) != base_trump


def test_row_multiplicity_counts(telco: pd.DataFrame) -> None:
    base = fingerprint(telco)
    duplicated = pd.concat([telco, telco.iloc[[42]]], ignore_index=True)
    assert fingerprint(duplicated) != base
    dropped = telco.drop(index=42)
    assert fingerprint(dropped) != base
    # Duplicating one row and dropping another is still a different table.
    swapped = pd.concat([telco.drop(index=41), telco.iloc[[42]]], ignore_index=True)
    assert fingerprint(swapped) != base


def test_column_names_and_placement_count(telco: pd.DataFrame) -> None:
    base = fingerprint(telco)
    assert fingerprint(telco.rename(columns={"tenure": "tenure_months"})) != base
    assert fingerprint(telco.drop(columns=["female"])) != base
    # The same values under swapped names are different data.
    swapped = telco.rename(columns={"partner": "dependents", "dependents": "partner"})
    assert (telco["partner"] != telco["dependents"]).any()
    assert fingerprint(swapped) != base


def test_types_that_differ_in_meaning_differ() -> None:
    assert fingerprint(pd.DataFrame({"x": ["1", "2"]})) != fingerprint(
        pd.DataFrame({"x": [1, 2]}))
    # Integer ids beyond float precision stay distinct.
    big = 2**60
    assert fingerprint(pd.DataFrame({"id": [big]})) != fingerprint(pd.DataFrame({"id": [big + 1]}))


def test_not_a_frame_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a pandas DataFrame"):
        fingerprint([[1, 2]])  # type: ignore[arg-type]
