"""The same table from CSV, Parquet, a SQLite table and a SQLite query: one contract, one
fingerprint. SQLite keeps booleans as 0/1 integers and timestamps without their zone, so
this holds only because both are defined on storage-independent values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from mlwright.data import learn_contract, load
from mlwright.data.fingerprint import fingerprint
from mlwright.datasets import load_suite


@pytest.fixture(scope="module")
def mpls() -> pd.DataFrame:
    """600 rows of mpls_person_search (datetime with zone, a NaN, high-cardinality text)."""
    return load_suite("mpls_person_search", nrows=600)


def _write_all(df: pd.DataFrame, folder: Path) -> dict[str, pd.DataFrame]:
    """The table written to each format, then read back through mlwright.data.load."""
    df.to_csv(folder / "data.csv", index=False)
    df.to_parquet(folder / "data.parquet", index=False)
    url = f"sqlite:///{folder / 'data.db'}"
    engine = sa.create_engine(url)
    try:
        df.to_sql("observations", engine, index=False)
    finally:
        engine.dispose()
    listed = ", ".join('"' + c + '"' for c in df.columns)
    return {
        "csv": load(folder / "data.csv"),
        "parquet": load(folder / "data.parquet"),
        "sqlite table": load(url, table="observations"),
        "sqlite query": load(url, query=f"SELECT {listed} FROM observations WHERE 1 = 1"),
    }


@pytest.mark.parametrize(
    ("name", "target"),
    [("telco", "churn"), ("trump", "source"), ("mpls", "personSearch")],
)
def test_every_source_gives_the_same_contract_and_fingerprint(
    name: str, target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    df: pd.DataFrame = request.getfixturevalue(name)
    frames = _write_all(df, tmp_path)
    reference = learn_contract(df, target)
    assert reference.fingerprint == fingerprint(df)
    for source, frame in frames.items():
        assert frame.shape == df.shape, source
        learned = learn_contract(frame, target, source=source)
        assert learned.meta.source == source
        assert learned.content() == reference.content(), source
        assert fingerprint(frame) == reference.fingerprint, source


def test_trump_slice_exercises_zone_boolean_text_and_ints(trump: pd.DataFrame) -> None:
    # Guards the test above: the slice must hold the types that SQLite stores differently.
    contract = learn_contract(trump, "source")
    dtypes = {c.name: c.dtype.value for c in contract.columns}
    assert getattr(trump["created_at"].dtype, "tz", None) is not None
    assert dtypes["created_at"] == "datetime"
    assert dtypes["is_retweet"] == "boolean"
    assert dtypes["retweet_count"] == "integer"
    assert contract.column("text").kind == "text"


def test_mpls_slice_has_missing_values(mpls: pd.DataFrame) -> None:
    contract = learn_contract(mpls, "personSearch")
    assert contract.column("date").dtype == "datetime"
    assert any(c.nullable for c in contract.columns)


def test_a_changed_row_in_the_database_changes_the_fingerprint(tmp_path: Path,
                                                               trump: pd.DataFrame) -> None:
    frames = _write_all(trump, tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE observations SET favorite_count = favorite_count + 1 "
                "WHERE rowid = (SELECT MIN(rowid) FROM observations)"
            ))
    finally:
        engine.dispose()
    updated = load(f"sqlite:///{tmp_path / 'data.db'}", table="observations")
    assert fingerprint(updated) != fingerprint(frames["csv"])
    assert fingerprint(frames["sqlite table"]) == fingerprint(frames["csv"])
