"""Built-in data sources and the one entry point :func:`load`.

Every source returns frames of the same shape for the same table: text columns are plain
``object``; text that is entirely numbers, ISO dates or true/false becomes numbers, datetimes
or booleans, as a CSV reader would infer; SQL's 0/1 booleans stay integers. That is what makes
a contract or a fingerprint independent of where the table was stored.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.data._base import DataSource, register_source, registered_sources
from mlwright.exceptions import ColumnNotFoundError, DataSourceError, EmptyDataError

__all__ = ["load", "resolve_source"]

log = get_logger(__name__)

_CSV_EXT = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zst", ".csv.bz2", ".csv.xz")
_PARQUET_EXT = (".parquet", ".pq", ".parq")
_JSONL_EXT = (".jsonl", ".ndjson", ".json", ".jsonl.gz")
_DUCKDB_EXT = (".duckdb", ".ddb")
_ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")


def _path_of(location: Any) -> Path | None:
    if isinstance(location, os.PathLike):
        return Path(location)
    if isinstance(location, str) and "://" not in location:
        return Path(location)
    return None


def _check_file(path: Path) -> None:
    if not path.exists():
        near = sorted(p.name for p in path.parent.glob("*"))[:10] if path.parent.exists() else []
        hint = f" Files in {str(path.parent)!r}: {', '.join(near)}." if near else ""
        raise DataSourceError(
            f"No file at {str(path)!r}: expected a CSV, TSV, Parquet, JSON Lines or DuckDB file, "
            f"or a SQLAlchemy URL such as 'sqlite:///data.db'. Check the path.{hint}"
        )
    if path.is_dir():
        raise DataSourceError(f"{str(path)!r} is a folder; give the path of a file inside it.")
    if not os.access(path, os.R_OK):
        raise DataSourceError(f"{str(path)!r} exists but cannot be read: check its permissions.")


def _sample_rows(df: pd.DataFrame, sample: int | None, seed: int) -> pd.DataFrame:
    if sample is None or sample >= len(df):
        return df
    return df.sample(n=sample, random_state=seed).sort_index().reset_index(drop=True)


@register_source
class DataFrameSource(DataSource):
    name = "dataframe"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        return isinstance(location, pd.DataFrame)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        df = self.location if columns is None else self.location[columns]
        return _sample_rows(df.copy(), sample, seed)

    def describe(self) -> str:
        return "dataframe"


@register_source
class CSVSource(DataSource):
    """CSV or TSV; delimiter and encoding are detected from the first 64 KiB."""

    name = "csv"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and str(path).lower().endswith(_CSV_EXT)

    def _sniff(self, path: Path) -> tuple[str, str]:
        opener = _open_compressed(path)
        with opener() as fh:
            head = fh.read(65536)
        encoding = self.options.get("encoding")
        if encoding is None:
            for enc in _ENCODINGS:
                try:
                    head.decode(enc)
                except UnicodeDecodeError:
                    # A multi-byte character cut at the 64 KiB edge is not an encoding error.
                    try:
                        head[:-4].decode(enc)
                    except UnicodeDecodeError:
                        continue
                encoding = enc
                break
            if head.startswith(b"\xef\xbb\xbf"):
                encoding = "utf-8-sig"
        text = head.decode(encoding or "latin-1", errors="replace")
        delimiter = self.options.get("delimiter") or self.options.get("sep")
        if delimiter is None:
            if str(path).lower().endswith((".tsv", ".tsv.gz")):
                delimiter = "\t"
            else:
                try:
                    delimiter = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|").delimiter
                except csv.Error:
                    delimiter = ","
        return delimiter, encoding or "latin-1"

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        path = Path(self.location)
        _check_file(path)
        delimiter, encoding = self._sniff(path)
        kwargs: dict[str, Any] = {"sep": delimiter, "encoding": encoding, "usecols": columns}
        try:
            if encoding in ("utf-8", "utf-8-sig") and len(delimiter) == 1:
                # pyarrow's multi-threaded parser: several times faster than the C engine.
                df = pd.read_csv(path, engine="pyarrow", **kwargs)
            else:
                df = pd.read_csv(path, low_memory=False, **kwargs)
        except pd.errors.EmptyDataError as exc:
            raise EmptyDataError(f"{str(path)!r} is empty: expected a header row and data.") from exc
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            if "Empty CSV file" in str(exc):
                raise EmptyDataError(
                    f"{str(path)!r} is empty: expected a header row and data."
                ) from exc
            raise DataSourceError(
                f"Could not parse {str(path)!r} as delimited text (delimiter {delimiter!r}, "
                f"encoding {encoding}): {exc}. Pass delimiter=/encoding= to load(), or "
                f"--delimiter/--encoding on the command line."
            ) from exc
        return _sample_rows(df, sample, seed)


@register_source
class ParquetSource(DataSource):
    name = "parquet"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and (
            str(path).lower().endswith(_PARQUET_EXT) or (path.is_dir() and any(path.glob("*.parquet")))
        )

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        import pyarrow.parquet as pq

        path = Path(self.location)
        if not path.is_dir():
            _check_file(path)
        try:
            table = pq.read_table(path, columns=columns)
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise DataSourceError(
                f"Could not read {str(path)!r} as Parquet: {exc}. Is it really a Parquet file?"
            ) from exc
        if sample is not None and sample < table.num_rows:
            rng = np.random.default_rng(seed)
            table = table.take(np.sort(rng.choice(table.num_rows, size=sample, replace=False)))
        return table.to_pandas()


@register_source
class JSONLinesSource(DataSource):
    name = "jsonl"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and str(path).lower().endswith(_JSONL_EXT)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        path = Path(self.location)
        _check_file(path)
        if path.stat().st_size == 0:
            raise EmptyDataError(f"{str(path)!r} is empty: expected one JSON object per line.")
        try:
            df = pd.read_json(path, lines=True, convert_dates=False, dtype=False)
        except ValueError as exc:
            raise DataSourceError(
                f"Could not read {str(path)!r} as JSON Lines (one JSON object per line): {exc}."
            ) from exc
        if columns is not None:
            df = df[columns]
        return _sample_rows(df, sample, seed)


def _sql_statement(table: str | None, query: str | None) -> str:
    if query:
        return query
    if not table:
        raise DataSourceError(
            "A SQL source needs a table or a query: pass table='name' or query='SELECT ...' "
            "(--table / --query on the command line)."
        )
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
    return f"SELECT * FROM {quoted}"


@register_source
class SQLSource(DataSource):
    """Any SQLAlchemy URL (``sqlite:///x.db``, ``postgresql+psycopg://...``)."""

    name = "sql"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        return isinstance(location, str) and "://" in location and not location.startswith(
            ("duckdb://", "http://", "https://", "s3://", "file://")
        )

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

        statement = _sql_statement(self.table, self.query)
        try:
            engine = sa.create_engine(self.location)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise DataSourceError(
                f"{self.location!r} is not a usable SQLAlchemy URL ({exc}). Expected e.g. "
                f"'sqlite:///path/to/file.db' or 'postgresql+psycopg://user:pw@host/db'."
            ) from exc
        except ImportError as exc:
            raise DataSourceError(
                f"The database driver for {self.location!r} is not installed ({exc}). For "
                f"PostgreSQL: pip install 'mlwright[postgres]'."
            ) from exc
        if engine.dialect.name == "sqlite":
            db = engine.url.database
            if db and db != ":memory:" and not Path(db).exists():
                raise DataSourceError(
                    f"No SQLite database at {db!r} (from {self.location!r}). Check the path; "
                    f"an absolute path needs four slashes: 'sqlite:////abs/path.db'."
                )
        try:
            with engine.connect() as conn:
                df = pd.read_sql_query(sa.text(statement), conn)
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise DataSourceError(
                f"The database refused {statement!r}: {detail}. Check the table name or the "
                f"query against the database at {engine.url.render_as_string(hide_password=True)}."
            ) from exc
        finally:
            engine.dispose()
        if columns is not None:
            missing = [c for c in columns if c not in df.columns]
            if missing:
                raise ColumnNotFoundError(missing[0], df.columns)
            df = df[columns]
        return _sample_rows(df, sample, seed)


@register_source
class DuckDBSource(DataSource):
    """A DuckDB database file (``x.duckdb`` or ``duckdb:///x.duckdb``) with a table or query."""

    name = "duckdb"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        if isinstance(location, str) and location.startswith("duckdb://"):
            return True
        path = _path_of(location)
        return path is not None and str(path).lower().endswith(_DUCKDB_EXT)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        import duckdb

        location = str(self.location)
        db = location.split("://", 1)[1].lstrip("/") if location.startswith("duckdb://") else location
        if location.startswith("duckdb:////"):
            db = "/" + db
        if db not in ("", ":memory:"):
            _check_file(Path(db))
        statement = _sql_statement(self.table, self.query)
        try:
            with duckdb.connect(db or ":memory:", read_only=bool(db)) as conn:
                df = conn.execute(statement).df()
        except duckdb.Error as exc:
            raise DataSourceError(f"DuckDB refused {statement!r} on {db!r}: {exc}.") from exc
        if columns is not None:
            df = df[columns]
        return _sample_rows(df, sample, seed)


def _open_compressed(path: Path):  # type: ignore[no-untyped-def]
    """A zero-argument callable opening ``path`` as bytes, decompressing by extension."""
    name = str(path).lower()
    if name.endswith(".gz"):
        import gzip

        return lambda: gzip.open(path, "rb")
    if name.endswith(".bz2"):
        import bz2

        return lambda: bz2.open(path, "rb")
    if name.endswith(".xz"):
        import lzma

        return lambda: lzma.open(path, "rb")
    return lambda: open(path, "rb")


def resolve_source(location: Any, *, table: str | None = None, query: str | None = None,
                   **options: Any) -> DataSource:
    """The :class:`DataSource` that reads ``location``."""
    for cls in registered_sources():
        if cls.accepts(location, table=table, query=query):
            return cls(location, table=table, query=query, **options)
    raise DataSourceError(
        f"Cannot tell how to read {location!r}: expected a file ending in "
        f"{', '.join(_CSV_EXT[:3] + _PARQUET_EXT[:1] + _JSONL_EXT[:2] + _DUCKDB_EXT[:1])}, "
        f"a SQLAlchemy URL ('sqlite:///data.db' with table= or query=), or a DataFrame."
    )


_TRUE_FALSE = {"true": True, "false": False}


def normalize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Give every source the same column types (see the module docstring)."""
    df = df.copy() if not df.columns.is_unique else df
    df.columns = [str(c) for c in df.columns]
    out = {}
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col.dtype):
            col = col.astype(object).where(col.notna(), np.nan)
        if col.dtype == object:
            col = _infer_text_column(col)
        elif pd.api.types.is_extension_array_dtype(col.dtype) and pd.api.types.is_numeric_dtype(
            col.dtype
        ):
            # Nullable Int64/Float64 from Parquet or SQL: plain numpy, as a CSV read gives.
            col = col.astype("float64") if col.isna().any() else col.astype(
                col.dtype.numpy_dtype
            )
        elif pd.api.types.is_datetime64_any_dtype(col.dtype):
            col = _unify_datetime(col)
        out[name] = col
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))


def _unify_datetime(col: pd.Series) -> pd.Series:
    # One resolution and zone everywhere: nanoseconds, UTC when the source had a zone.
    if getattr(col.dtype, "tz", None) is not None:
        return col.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    return col.astype("datetime64[ns]")


def _infer_text_column(col: pd.Series) -> pd.Series:
    non_null = col.dropna()
    if len(non_null) == 0:
        return col
    if not all(isinstance(v, str) for v in non_null.head(1000)):
        # Mixed Python objects (bytes, Decimal, dates from SQL drivers): leave them be unless
        # they are all numbers.
        converted = pd.to_numeric(col, errors="coerce")
        return converted if converted.notna().sum() == len(non_null) else col
    stripped = non_null.str.strip()
    lowered = stripped.str.lower()
    if lowered.isin(_TRUE_FALSE.keys()).all():
        return col.map(lambda v: _TRUE_FALSE.get(str(v).strip().lower()) if isinstance(v, str)
                       else v).astype("boolean" if col.isna().any() else bool)
    numeric = pd.to_numeric(stripped, errors="coerce")
    if numeric.notna().all():
        result = pd.to_numeric(col.where(col.isna(), col.str.strip()), errors="coerce")
        return result
    from mlwright.data.kinds import _text_looks_datetime

    if _text_looks_datetime(stripped):
        parsed = pd.to_datetime(stripped, errors="coerce", utc=True, format="mixed")
        if parsed.notna().all():
            has_zone = stripped.head(200).str.contains(r"(Z|[+-]\d{2}:?\d{2})$", regex=True).any()
            full = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
            return _unify_datetime(full if has_zone else full.dt.tz_localize(None))
    return col


def load(source: Any, *, table: str | None = None, query: str | None = None,
         sample: int | None = None, columns: list[str] | None = None, seed: int = 0,
         normalize: bool = True, **options: Any) -> pd.DataFrame:
    """Read a table into a pandas DataFrame.

    Args:
        source: a path (CSV/TSV, Parquet, JSON Lines, DuckDB), a SQLAlchemy URL, a
            ``duckdb:///`` URL, or a DataFrame.
        table, query: for SQL and DuckDB sources, a table name or a SELECT statement.
        sample: read at most this many rows, drawn at random with ``seed``.
        columns: read only these columns.
        normalize: give text/number/date columns the same types whatever the source.
        options: passed to the source (``delimiter=``, ``encoding=`` for CSV).
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
