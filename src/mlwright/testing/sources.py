"""The data-source suite: every :class:`~mlwright.data._base.DataSource` reads back a real
table written in its format (telco_churn: integers, floats, text, a missing value) as the
same frame, samples it reproducibly, and reads only the columns asked for.

A source is tested once :data:`CASES` says how to store a table for it (one line).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlwright.data._base import SOURCES, DataSource
from mlwright.exceptions import ColumnNotFoundError

__all__ = ["CASES", "SourceCase", "SourceConformance", "table"]


@dataclass(frozen=True)
class SourceCase:
    """How to store a table for one source: ``write(df, folder)`` returns the location
    that :func:`mlwright.data.load` is given, and ``options`` its keyword arguments."""

    name: str
    write: Callable[[pd.DataFrame, Path], Any]
    options: dict[str, Any] = field(default_factory=dict)


def _sqlite(df: pd.DataFrame, folder: Path) -> str:
    import sqlalchemy as sa

    url = f"sqlite:///{folder / 'table.db'}"
    engine = sa.create_engine(url)
    try:
        df.to_sql("observations", engine, index=False)
    finally:
        engine.dispose()
    return url


def _duckdb(df: pd.DataFrame, folder: Path) -> str:
    import duckdb

    path = folder / "table.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.register("frame", df)
        conn.execute("CREATE TABLE observations AS SELECT * FROM frame")
    return str(path)


def _csv(df: pd.DataFrame, folder: Path) -> str:
    df.to_csv(folder / "table.csv", index=False)
    return str(folder / "table.csv")


def _parquet(df: pd.DataFrame, folder: Path) -> str:
    df.to_parquet(folder / "table.parquet", index=False)
    return str(folder / "table.parquet")


def _jsonl(df: pd.DataFrame, folder: Path) -> str:
    df.to_json(folder / "table.jsonl", orient="records", lines=True)
    return str(folder / "table.jsonl")


#: registered source name -> how to store a table for it.
CASES: dict[str, SourceCase] = {c.name: c for c in [
    SourceCase("dataframe", lambda df, _folder: df.copy()),
    SourceCase("csv", _csv),
    SourceCase("parquet", _parquet),
    SourceCase("jsonl", _jsonl),
    SourceCase("sql", _sqlite, {"table": "observations"}),
    SourceCase("duckdb", _duckdb, {"table": "observations"}),
]}


@functools.cache
def table() -> pd.DataFrame:
    """300 rows of telco_churn, as every source should read them back."""
    from mlwright.datasets import load_suite

    df = load_suite("telco_churn", nrows=300)
    assert df.isna().any().any(), "the slice must hold a missing value"
    return df


class SourceConformance:
    """Behaviour every data source must have. Needs a ``source_case`` fixture
    (a :class:`SourceCase`); ``tmp_path`` is pytest's."""

    def _stored(self, case: SourceCase, tmp_path: Path) -> Any:
        return case.write(table(), tmp_path)

    def test_claims_what_it_wrote(self, source_case: SourceCase, tmp_path: Path) -> None:
        from mlwright.data.sources import resolve_source

        location = self._stored(source_case, tmp_path)
        source = resolve_source(location, **source_case.options)
        assert isinstance(source, DataSource)
        assert source.name == source_case.name
        if source_case.name in SOURCES:
            assert isinstance(source, SOURCES.get(source_case.name))
        assert isinstance(source.describe(), str) and source.describe()

    def test_round_trips_a_real_table(self, source_case: SourceCase, tmp_path: Path) -> None:
        from mlwright.data.sources import load, normalize_frame

        location = self._stored(source_case, tmp_path)
        frame = load(location, **source_case.options)
        pd.testing.assert_frame_equal(frame, normalize_frame(table()))

    def test_samples_reproducibly(self, source_case: SourceCase, tmp_path: Path) -> None:
        from mlwright.data.sources import load, normalize_frame

        location = self._stored(source_case, tmp_path)
        first = load(location, sample=40, seed=7, **source_case.options)
        again = load(location, sample=40, seed=7, **source_case.options)
        assert len(first) == 40 and list(first.columns) == list(table().columns)
        pd.testing.assert_frame_equal(first, again)
        # Every sampled row is a row of the table, and they are distinct rows.
        full = normalize_frame(table()).astype(str)
        rows = set(map(tuple, full.itertuples(index=False)))
        sampled = list(map(tuple, first.astype(str).itertuples(index=False)))
        assert set(sampled) <= rows
        other = load(location, sample=40, seed=8, **source_case.options)
        assert not first.equals(other), "the seed must choose the rows"

    def test_reads_only_the_columns_asked_for(self, source_case: SourceCase,
                                              tmp_path: Path) -> None:
        from mlwright.data.sources import load, normalize_frame

        location = self._stored(source_case, tmp_path)
        picked = ["tenure", "contract", "total_charges"]
        frame = load(location, columns=picked, **source_case.options)
        pd.testing.assert_frame_equal(frame, normalize_frame(table())[picked])
        with pytest.raises(ColumnNotFoundError, match="tenur"):
            load(location, columns=["tenure", "tenur"], **source_case.options)
