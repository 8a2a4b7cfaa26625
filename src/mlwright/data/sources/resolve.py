"""The one entry point: resolve_source() picks the registered source that accepts a
location, load() reads and normalises it."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from mlwright._logging import get_logger
from mlwright.data._base import DataSource, registered_sources
from mlwright.data.sources._common import (
    _CSV_EXT,
    _DUCKDB_EXT,
    _JSONL_EXT,
    _PARQUET_EXT,
    _check_file,
    _path_of,
)
from mlwright.data.sources.normalize import normalize_frame
from mlwright.exceptions import DataSourceError, EmptyDataError

__all__ = ["load", "read_text_table", "resolve_source"]

log = get_logger(__name__)


def resolve_source(location: Any, *, table: str | None = None, query: str | None = None,
                   **options: Any) -> DataSource:
    """The :class:`DataSource` that reads ``location``."""
    for cls in registered_sources():
        if cls.accepts(location, table=table, query=query):
            return cls(location, table=table, query=query, **options)
    path = _path_of(location)
    if path is not None and not path.exists():
        _check_file(path)  # a missing file is the likelier mistake than an unknown format
    if path is not None and path.suffix.lower() in (".xlsx", ".xls", ".ods"):
        raise DataSourceError(
            f"{str(path)!r} is a spreadsheet, which mlwright does not read directly: save the "
            f"sheet as CSV (or Parquet) and give that file."
        )
    if path is not None and path.is_dir():
        raise DataSourceError(
            f"{str(path)!r} is a folder without Parquet files: give the path of a data file, "
            f"or a folder of .parquet parts."
        )
    raise DataSourceError(
        f"Cannot tell how to read {location!r}: expected a file ending in "
        f"{', '.join(_CSV_EXT[:3] + _PARQUET_EXT[:1] + _JSONL_EXT[:2] + _DUCKDB_EXT[:1])}, "
        f"a SQLAlchemy URL ('sqlite:///data.db' with table= or query=), a DuckDB file, or a "
        f"DataFrame."
    )


def load(source: Any, *, table: str | None = None, query: str | None = None,
         sample: int | None = None, columns: list[str] | None = None, seed: int = 0,
         normalize: bool = True, **options: Any) -> pd.DataFrame:
    """Read a table into a pandas DataFrame.

    Args:
        source: a path (CSV/TSV, Parquet, JSON Lines, DuckDB), a SQLAlchemy URL, a
            ``duckdb:///`` URL, or a DataFrame.
        table, query: for SQL and DuckDB sources, a table name or a SELECT statement.
        sample: read at most this many rows, drawn at random with ``seed``. Files and SQL
            draw the same rows for the same table and seed. Parquet is read one row group at
            a time (skipping groups with no drawn row), DuckDB samples inside the engine, SQL
            streams the rows in chunks: memory holds the sample, not the table.
        columns: read only these columns (pushed down to CSV, Parquet and DuckDB readers).
        normalize: give text/number/date columns the same types whatever the source.
        options: passed to the source: ``delimiter=``, ``encoding=`` and
            ``engine="pandas"`` (instead of pyarrow) for CSV; ``chunk_rows=`` for SQL.

    Raises:
        DataSourceError: the source is missing, unreadable or of an unknown kind.
        EmptyDataError: it holds no rows or no columns.
        ColumnNotFoundError: a name in ``columns`` is not in the table.
    """
    if sample is not None and sample <= 0:
        raise DataSourceError(f"sample must be a positive number of rows, got {sample}.")
    src = resolve_source(source, table=table, query=query, **options)
    log.debug("reading %s", src.describe())
    df = src.read(sample=sample, columns=columns, seed=seed)
    if df.shape[1] == 0 or len(df) == 0:
        raise EmptyDataError(
            f"{src.describe()} holds no {'columns' if df.shape[1] == 0 else 'rows'}: "
            f"expected a table with a header and at least one row."
        )
    return normalize_frame(df) if normalize else df


def read_text_table(text: str) -> pd.DataFrame:
    """Parse CSV text held in memory (used by tests and the batch endpoint)."""
    return normalize_frame(pd.read_csv(io.StringIO(text)))
