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

__all__ = ["load", "resolve_source", "sniff_csv"]

log = get_logger(__name__)

_CSV_EXT = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zst", ".csv.bz2", ".csv.xz")
_PARQUET_EXT = (".parquet", ".pq", ".parq")
_JSONL_EXT = (".jsonl", ".ndjson", ".json", ".jsonl.gz")
_DUCKDB_EXT = (".duckdb", ".ddb")


# Text that every reader takes for a missing value: pandas' defaults, given to pyarrow as well
# so that the fast CSV path and the pandas fallback agree on what is missing.
_NULL_TEXT = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)
# Delimiters tried when none is given, in order of preference on a tie.
_DELIMITERS = (",", "\t", ";", "|")
_SNIFF_BYTES = 65536


def _path_of(location: Any) -> Path | None:
    if isinstance(location, os.PathLike):
        return Path(location)
    if isinstance(location, str) and location.startswith("file://"):
        return Path(location[len("file://"):])
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
        raise DataSourceError(
            f"{str(path)!r} is a folder, not a file: give the path of a file inside it (a "
            f"folder is read only when it holds Parquet parts)."
        )
    if not os.access(path, os.R_OK):
        raise DataSourceError(f"{str(path)!r} exists but cannot be read: check its permissions.")


def _sample_positions(n_rows: int, sample: int | None, seed: int) -> np.ndarray | None:
    """Sorted positions of ``sample`` rows drawn without replacement, or None for all rows.

    Every source that samples by position uses this, so that a sample of one table holds the
    same rows whether the table was stored as CSV, Parquet, JSON Lines or in SQL.
    """
    if sample is None or sample >= n_rows:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=sample, replace=False))


def _sample_rows(df: pd.DataFrame, sample: int | None, seed: int) -> pd.DataFrame:
    positions = _sample_positions(len(df), sample, seed)
    if positions is None:
        return df
    return df.iloc[positions].reset_index(drop=True)


def _require_columns(columns: list[str] | None, available: list[str]) -> None:
    for column in columns or ():
        if column not in available:
            raise ColumnNotFoundError(column, available)


@register_source
class DataFrameSource(DataSource):
    name = "dataframe"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        return isinstance(location, pd.DataFrame)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        _require_columns(columns, [str(c) for c in self.location.columns])
        df = self.location if columns is None else self.location[columns]
        return _sample_rows(df.copy(), sample, seed)

    def describe(self) -> str:
        return "dataframe"


def _open_bytes(path: Path) -> Any:
    """``path`` opened as a binary stream, decompressed according to its extension."""
    name = str(path).lower()
    if name.endswith(".xz"):  # the one codec pyarrow lacks
        import lzma

        return lzma.open(path, "rb")
    import pyarrow as pa

    codec = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}.get(path.suffix.lower())
    return pa.input_stream(str(path), compression=codec)


def _detect_encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text"
        return "utf-16"
    # A multi-byte character cut at the end of the sniffed bytes is not an encoding error.
    body = head[:-4] if len(head) == _SNIFF_BYTES else head
    for encoding in ("utf-8", "cp1252"):
        try:
            body.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"  # decodes any byte sequence


def sniff_csv(body: bytes) -> tuple[str, str]:
    """(encoding, delimiter) of CSV bytes, as :func:`load` detects them for a file."""
    head = body[:_SNIFF_BYTES]
    encoding = _detect_encoding(head)
    text = head.decode(encoding, errors="replace")
    return encoding, _detect_delimiter(text, complete=len(body) <= _SNIFF_BYTES)


def _detect_delimiter(text: str, complete: bool) -> str:
    """The delimiter that splits the first lines into the most, equally many, fields.

    Parsing with :mod:`csv` honours quotes, so a comma inside a quoted field of a
    semicolon-separated file does not count; :class:`csv.Sniffer` is the last resort.
    """
    lines = text.splitlines(keepends=True)
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    sample = "".join(lines[:200])
    best, best_fields = None, 1
    for delimiter in _DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r]
        except csv.Error:
            continue
        widths = {len(r) for r in rows}
        if len(widths) == 1 and (fields := widths.pop()) > best_fields:
            best, best_fields = delimiter, fields
    if best is not None:
        return best
    try:
        return csv.Sniffer().sniff(sample[:20000], delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _pandas_style_names(names: list[str]) -> list[str]:
    """Column names as pandas' own CSV parser gives them: blanks named, duplicates numbered."""
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        name = name if name.strip() else f"Unnamed: {i}"
        base, k = name, 0
        while name in seen:
            k += 1
            name = f"{base}.{k}"
        seen.add(name)
        out.append(name)
    return out


def _log_late_encoding(path: Path, sniffed: str, used: str) -> None:
    if used != sniffed:
        log.warning("%s is not valid %s past its first 64 KiB; read it as %s", path, sniffed, used)


def _has_binary_column(table: Any) -> bool:
    import pyarrow as pa

    return any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in table.schema.types)


def _arrow_to_pandas(table: Any) -> pd.DataFrame:
    """Convert a pyarrow table read from text into the frame pandas' CSV parser would give."""
    import pyarrow as pa

    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_null(kind):  # an empty column: pandas reads it as float NaN
            kind = pa.float64()
        elif pa.types.is_date(kind):  # pandas reads ISO dates as text, then as datetimes
            kind = pa.timestamp("s")
        elif pa.types.is_time(kind):  # pandas keeps clock times as text
            kind = pa.string()
        fields.append(pa.field(field.name, kind))
    schema = pa.schema(fields)
    if schema != table.schema:
        table = table.cast(schema)
    # self_destruct frees each Arrow column once converted: lower peak memory on big files.
    return table.to_pandas(split_blocks=True, self_destruct=True)


@register_source
class CSVSource(DataSource):
    """CSV or TSV (optionally compressed); delimiter and encoding are detected.

    Files are parsed by pyarrow's multi-threaded reader; pandas' parser is the fallback for
    what pyarrow rejects (multi-character delimiters, ragged rows), or the choice with
    ``engine="pandas"``. Both give the same types.
    """

    name = "csv"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and str(path).lower().endswith(_CSV_EXT)

    def _sniff(self, path: Path) -> tuple[str, str, list[str]]:
        """Delimiter, encoding and header names, from the first 64 KiB."""
        with _open_bytes(path) as fh:
            head = fh.read(_SNIFF_BYTES)
        if not head.strip():
            raise EmptyDataError(
                f"{str(path)!r} is empty: expected a header row and at least one row of data."
            )
        encoding = self.options.get("encoding") or _detect_encoding(head)
        if b"\x00" in head and not encoding.lower().replace("-", "").startswith("utf16"):
            raise DataSourceError(
                f"{str(path)!r} holds binary data, not delimited text: is it another format or "
                f"compressed? Give it the matching extension (.parquet, .csv.gz, ...)."
            )
        text = head.decode(encoding, errors="replace")
        delimiter = self.options.get("delimiter") or self.options.get("sep")
        if delimiter is None:
            if str(path).lower().endswith((".tsv", ".tsv.gz")):
                delimiter = "\t"
            else:
                delimiter = _detect_delimiter(text, complete=len(head) < _SNIFF_BYTES)
        header: list[str] = []
        if len(delimiter) == 1:
            header = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter), [])
        return delimiter, encoding, _pandas_style_names(header)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        path = _path_of(self.location) or Path(str(self.location))
        _check_file(path)
        delimiter, encoding, header = self._sniff(path)
        if header:
            _require_columns(columns, header)
        engine = self.options.get("engine", "pyarrow")
        if engine not in ("pyarrow", "pandas"):
            raise DataSourceError(f"engine={engine!r}: expected 'pyarrow' or 'pandas'.")
        encodings = [encoding]
        if "encoding" not in self.options and encoding.startswith("utf-8"):
            # Only the head was sniffed: a legacy byte further down means cp1252 (or latin-1).
            encodings += ["cp1252", "latin-1"]
        if len(delimiter) == 1 and engine == "pyarrow":
            for i, candidate in enumerate(encodings):
                try:
                    table = self._read_arrow(path, delimiter, candidate, header, columns)
                except UnicodeDecodeError as exc:
                    log.debug("%s is not %s (%s)", path, candidate, exc)
                    continue
                except Exception as exc:  # pyarrow.ArrowInvalid and friends
                    if "utf8" in str(exc).lower().replace("-", ""):
                        log.debug("%s is not %s (%s)", path, candidate, exc)
                        continue
                    log.info("pyarrow could not parse %s (%s); using pandas' parser", path, exc)
                    encodings = encodings[i:]
                    break
                if candidate != encodings[-1] and _has_binary_column(table):
                    # pyarrow keeps text that is not valid UTF-8 as bytes instead of failing.
                    log.debug("%s has bytes that are not %s", path, candidate)
                    continue
                _log_late_encoding(path, encoding, candidate)
                positions = _sample_positions(table.num_rows, sample, seed)
                if positions is not None:
                    table = table.take(positions)
                return _arrow_to_pandas(table)
        for candidate in encodings:
            try:
                df = self._read_pandas(path, delimiter, candidate, columns)
            except UnicodeDecodeError as exc:
                if candidate == encodings[-1]:
                    raise self._parse_error(path, delimiter, candidate, exc) from exc
                continue
            _log_late_encoding(path, encoding, candidate)
            return _sample_rows(df if columns is None else df[columns], sample, seed)
        raise AssertionError("unreachable: latin-1 decodes any byte")  # pragma: no cover

    def _read_arrow(self, path: Path, delimiter: str, encoding: str, header: list[str],
                    columns: list[str] | None) -> Any:
        import pyarrow.csv as pacsv

        read_options = pacsv.ReadOptions(
            # pyarrow skips a UTF-8 byte-order mark itself; other codecs are transcoded.
            encoding="utf8" if encoding.startswith("utf-8") else encoding,
        )
        if header:
            # Our own names (blank and duplicate ones fixed as pandas does) replace the header.
            read_options.column_names = header
            read_options.skip_rows = 1
        convert = pacsv.ConvertOptions(
            null_values=list(_NULL_TEXT), strings_can_be_null=True, include_columns=columns
        )
        try:
            with _open_bytes(path) as fh:
                return pacsv.read_csv(fh, read_options=read_options, convert_options=convert,
                                      parse_options=pacsv.ParseOptions(delimiter=delimiter))
        except Exception as exc:
            message = str(exc)
            if not ("Expected" in message and "columns" in message) and "sync" not in message:
                raise
        # A quoted value spanning lines can straddle pyarrow's parallel blocks: parse again,
        # allowing it (slower, so only when needed).
        with _open_bytes(path) as fh:
            return pacsv.read_csv(
                fh, read_options=read_options, convert_options=convert,
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            )

    def _read_pandas(self, path: Path, delimiter: str, encoding: str,
                     columns: list[str] | None) -> pd.DataFrame:
        engine = "c" if len(delimiter) == 1 else "python"  # regex delimiters need Python's
        try:
            with _open_bytes(path) as fh:
                kwargs: dict[str, Any] = {"low_memory": False} if engine == "c" else {}
                return pd.read_csv(fh, sep=delimiter, encoding=encoding, usecols=columns,
                                   engine=engine, **kwargs)
        except UnicodeDecodeError:
            raise
        except pd.errors.EmptyDataError as exc:
            raise EmptyDataError(
                f"{str(path)!r} is empty: expected a header row and data."
            ) from exc
        except (ValueError, pd.errors.ParserError) as exc:
            raise self._parse_error(path, delimiter, encoding, exc) from exc

    @staticmethod
    def _parse_error(path: Path, delimiter: str, encoding: str, exc: Exception
                     ) -> DataSourceError:
        return DataSourceError(
            f"Could not parse {str(path)!r} as delimited text (delimiter {delimiter!r}, "
            f"encoding {encoding}): {str(exc).strip()}. Fix the file, or pass "
            f"delimiter=/encoding= to load() (--delimiter/--encoding on the command line)."
        )


@register_source
class ParquetSource(DataSource):
    """A Parquet file, or a folder of Parquet parts (Hive partitions such as ``year=2024/``)."""

    name = "parquet"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and (
            str(path).lower().endswith(_PARQUET_EXT)
            or (path.is_dir() and any(path.rglob("*.parquet")))
        )

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        import pyarrow.dataset as ds

        path = _path_of(self.location) or Path(str(self.location))
        if not path.is_dir():
            _check_file(path)
        try:
            dataset = ds.dataset(str(path), format="parquet",
                                 partitioning="hive" if path.is_dir() else None)
            _require_columns(columns, dataset.schema.names)
            positions = _sample_positions(dataset.count_rows(), sample, seed)
            if positions is None:
                table = dataset.to_table(columns=columns)
            else:
                table = self._take(dataset, positions, columns)
        except ColumnNotFoundError:
            raise
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise DataSourceError(
                f"Could not read {str(path)!r} as Parquet ({exc}). Check that it is a complete "
                f"Parquet file (or a folder of them), e.g. with pyarrow.parquet.read_metadata."
            ) from exc
        return table.to_pandas(split_blocks=True, self_destruct=True)

    @staticmethod
    def _take(dataset: Any, positions: np.ndarray, columns: list[str] | None) -> Any:
        """The rows at ``positions``, read one row group at a time.

        Row groups holding no drawn row are skipped, and memory holds one row group plus the
        sample, never the whole table (``Dataset.take`` materialises every row group).
        """
        import pyarrow as pa

        pieces, offset = [], 0
        for fragment in dataset.get_fragments():
            for group in fragment.row_groups:
                lo, hi = np.searchsorted(positions, [offset, offset + group.num_rows])
                if hi > lo:
                    part = fragment.subset(row_group_ids=[group.id]).to_table(
                        schema=dataset.schema, columns=columns)
                    pieces.append(part.take(positions[lo:hi] - offset))
                offset += group.num_rows
        return pa.concat_tables(pieces)


@register_source
class JSONLinesSource(DataSource):
    """JSON Lines (one object per line); a ``.json`` file holding one array also works."""

    name = "jsonl"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and str(path).lower().endswith(_JSONL_EXT)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        path = _path_of(self.location) or Path(str(self.location))
        _check_file(path)
        with _open_bytes(path) as fh:
            head = fh.read(_SNIFF_BYTES).lstrip()
        if not head:
            raise EmptyDataError(f"{str(path)!r} is empty: expected one JSON object per line.")
        lines = not head.startswith(b"[")
        try:
            # dtype=False: values stay as JSON typed them; text dates are left to normalize_frame.
            df = pd.read_json(path, lines=lines, dtype=False, orient=None if lines else "records")
        except ValueError as exc:
            raise DataSourceError(
                f"Could not read {str(path)!r} as JSON Lines (one JSON object per line) or a "
                f"JSON array of objects: {exc}. Check that each line is one complete object."
            ) from exc
        _require_columns(columns, [str(c) for c in df.columns])
        if columns is not None:
            df = df[columns]
        return _sample_rows(df, sample, seed)


def _sql_statement(table: str | None, query: str | None) -> str:
    """The SELECT to run, as text (DuckDB quotes identifiers the standard way)."""
    if query:
        return query.strip().rstrip(";").strip()
    if not table:
        raise DataSourceError(
            "A SQL source needs a table or a query: pass table='name' or query='SELECT ...' "
            "(--table / --query on the command line)."
        )
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
    return f"SELECT * FROM {quoted}"


def _sql_selectable(table: str | None, query: str | None) -> Any:
    """The SELECT to run, as SQLAlchemy builds it for each dialect (MySQL quotes with `)."""
    import sqlalchemy as sa

    if query or not table:
        return sa.text(_sql_statement(table, query)).columns()
    schema, _, name = table.rpartition(".")
    return sa.select(sa.text("*")).select_from(sa.table(name, schema=schema or None))


def _close_names(name: str, names: list[str]) -> str:
    """' Did you mean ...? It has: ...' for a name missing from a database."""
    import difflib

    close = [n for n in names if n.lower() == name.lower()]
    close += [n for n in difflib.get_close_matches(name, names, n=3) if n not in close]
    hint = f" Did you mean {' or '.join(repr(n) for n in close[:3])}?" if close else ""
    shown = ", ".join(repr(n) for n in names[:20]) or "none"
    return f"{hint} Tables in the database: {shown}{' ...' if len(names) > 20 else ''}."


def _first_line(exc: BaseException) -> str:
    """The first line of a database error (drivers add multi-line SQL excerpts and links)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0].rstrip(".!") if text else type(exc).__name__


def _safe_url(location: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(location).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide
        return location


# Python package to install for a missing SQLAlchemy driver module.
_DRIVER_PACKAGES = {
    "psycopg": "'mlwright[postgres]' (psycopg 3)",
    "psycopg2": "psycopg2-binary (or write the URL as 'postgresql+psycopg://...' and "
                "install 'mlwright[postgres]')",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "pyodbc": "pyodbc",
    "oracledb": "oracledb",
}


@register_source
class SQLSource(DataSource):
    """Any SQLAlchemy URL (``sqlite:///x.db``, ``postgresql+psycopg://...``).

    Option ``chunk_rows``: rows fetched per round trip while sampling (default 50,000).
    """

    name = "sql"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        return isinstance(location, str) and "://" in location and not location.startswith(
            ("duckdb://", "http://", "https://", "s3://", "file://")
        )

    def describe(self) -> str:
        what = self.query or self.table
        return f"sql:{_safe_url(self.location)}" + (f" ({what})" if what else "")

    def _engine(self) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError

        try:
            engine = sa.create_engine(self.location)
        except ImportError as exc:
            module = getattr(exc, "name", None) or str(exc)
            package = _DRIVER_PACKAGES.get(str(module).split(".")[0], str(module))
            raise DataSourceError(
                f"The database driver for {_safe_url(self.location)} is not installed ({exc}). "
                f"Install it with: pip install {package}"
            ) from exc
        except (ArgumentError, ValueError) as exc:
            raise DataSourceError(
                f"{self.location!r} is not a usable SQLAlchemy URL ({exc}). Expected e.g. "
                f"'sqlite:///path/to/file.db' or 'postgresql+psycopg://user:pw@host/db'."
            ) from exc
        if engine.dialect.name == "sqlite":
            db = engine.url.database
            if db and db != ":memory:" and not db.startswith("file:") and not Path(db).exists():
                raise DataSourceError(
                    f"No SQLite database at {db!r} (from {self.location!r}). Check the path; "
                    f"an absolute path needs four slashes: 'sqlite:////abs/path.db'."
                )
        return engine

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        import sqlalchemy as sa
        from sqlalchemy.exc import SQLAlchemyError

        statement = _sql_selectable(self.table, self.query)
        shown = repr(self.query) if self.query else f"the table {self.table!r}"
        engine = self._engine()
        where = engine.url.render_as_string(hide_password=True)
        try:
            try:
                conn = engine.connect()
            except SQLAlchemyError as exc:
                raise DataSourceError(
                    f"Could not connect to {where}: {_first_line(exc)}. Check the host, port, "
                    f"database name and credentials in the URL, and that the server is running."
                ) from exc
            with conn:
                if self.table and not self.query:
                    self._check_table(conn, self.table, where)
                try:
                    df = self._fetch(conn, statement, sample, seed)
                except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
                    # pandas wraps some driver errors in its own DatabaseError.
                    cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
                    detail = _first_line(cause or exc)
                    tables = sorted(sa.inspect(conn).get_table_names())
                    raise DataSourceError(
                        f"The database at {where} refused {shown}: {detail}. Check the "
                        f"query's table and column names.{_close_names('', tables)}"
                    ) from exc
        finally:
            engine.dispose()
        _require_columns(columns, [str(c) for c in df.columns])
        return df if columns is None else df[columns]

    @staticmethod
    def _check_table(conn: Any, table: str, where: str) -> None:
        import sqlalchemy as sa

        schema, _, name = table.rpartition(".")
        inspector = sa.inspect(conn)
        if inspector.has_table(name, schema=schema or None):
            return
        names = sorted(inspector.get_table_names(schema=schema or None)
                       + inspector.get_view_names(schema=schema or None))
        raise DataSourceError(
            f"No table {table!r} in the database at {where}.{_close_names(name, names)}"
        )

    def _fetch(self, conn: Any, statement: Any, sample: int | None, seed: int) -> pd.DataFrame:
        import sqlalchemy as sa

        if sample is None:
            return pd.read_sql_query(statement, conn)
        # A portable random sample: count, draw positions as every file source does, then
        # stream the rows keeping only the drawn ones (memory bounded by the sample size).
        counted = sa.select(sa.func.count()).select_from(
            statement.subquery("mlwright_sample"))
        n_rows = int(conn.execute(counted).scalar_one())
        positions = _sample_positions(n_rows, sample, seed)
        if positions is None:
            return pd.read_sql_query(statement, conn)
        kept, start = [], 0
        streaming = conn.execution_options(stream_results=True)
        chunk_rows = int(self.options.get("chunk_rows", 50_000))
        for chunk in pd.read_sql_query(statement, streaming, chunksize=chunk_rows):
            lo, hi = np.searchsorted(positions, [start, start + len(chunk)])
            kept.append(chunk.iloc[positions[lo:hi] - start])
            start += len(chunk)
        return pd.concat(kept, ignore_index=True)


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

    def _database(self) -> str:
        location = str(self.location)
        if not location.startswith("duckdb://"):
            return location
        # Same convention as SQLAlchemy's sqlite URLs: three slashes relative, four absolute.
        db = location.split("://", 1)[1]
        return db[1:] if db.startswith("/") else db

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        import duckdb

        db = self._database()
        if db not in ("", ":memory:"):
            _check_file(Path(db))
        statement = _sql_statement(self.table, self.query)
        try:
            with duckdb.connect(db or ":memory:", read_only=db not in ("", ":memory:")) as conn:
                try:
                    names = [d[0] for d in conn.execute(
                        f"SELECT * FROM ({statement}) AS mlwright_q LIMIT 0").description]
                except duckdb.Error as exc:  # unknown table or column, bad syntax
                    tables = sorted(r[0] for r in conn.execute(
                        "SELECT table_name FROM information_schema.tables").fetchall())
                    missing = self.table if self.table and not self.query else ""
                    raise DataSourceError(
                        f"DuckDB refused {statement!r} on {db!r}: {_first_line(exc)}. Check the "
                        f"table name or the query.{_close_names(missing, tables)}"
                    ) from exc
                _require_columns(columns, names)
                selected = "*" if columns is None else ", ".join(
                    '"' + c.replace('"', '""') + '"' for c in columns)
                sql = f"SELECT {selected} FROM ({statement}) AS mlwright_q"
                if sample is not None:
                    # Pushed down: DuckDB draws the rows while scanning, without loading the rest.
                    sql += f" USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})"
                df = conn.execute(sql).df()
        except duckdb.Error as exc:
            raise DataSourceError(
                f"DuckDB could not read {statement!r} from {db!r}: {_first_line(exc)}. Check "
                f"that the file is a DuckDB database and the table or query is right."
            ) from exc
        return df


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


_TRUE_FALSE = {"true": True, "false": False}


def normalize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Give every source the same column types (see the module docstring)."""
    # Positions, not labels: a frame sliced by train_test_split (or a Parquet file written
    # from one) keeps its old row labels, and columns rebuilt below are positional.
    df = df.reset_index(drop=True)
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


def _expand(per_value: pd.Series, codes: np.ndarray) -> pd.Series:
    """Values inferred once per distinct value, spread back over the rows (-1: missing)."""
    out = per_value.take(np.where(codes < 0, 0, codes)).reset_index(drop=True)
    return out.where(pd.Series(codes >= 0)) if (codes < 0).any() else out


def _infer_text_column(col: pd.Series) -> pd.Series:
    # Work on the distinct values only: a million-row column of a few thousand labels costs
    # one hashing pass instead of a million string conversions.
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    if len(uniques) == 0:
        return col
    values = pd.Series(np.asarray(uniques, dtype=object))
    if not all(isinstance(v, str) for v in values.head(1000)):
        # Mixed Python objects (bytes, Decimal, dates from SQL drivers): leave them be unless
        # they are all numbers.
        converted = pd.to_numeric(values, errors="coerce")
        return _expand(converted, codes) if converted.notna().all() else col
    stripped = values.str.strip()
    lowered = stripped.str.lower()
    if len(values) <= 4 and lowered.isin(_TRUE_FALSE.keys()).all():
        flags = _expand(lowered.map(_TRUE_FALSE), codes)
        return flags.astype("boolean") if (codes < 0).any() else flags.astype(bool)
    # Cheap gates on a few values before converting them all.
    if pd.to_numeric(stripped.head(200), errors="coerce").notna().all():
        numeric = pd.to_numeric(stripped, errors="coerce")
        if numeric.notna().all():
            return _expand(numeric, codes)
    from mlwright.data.kinds import _text_looks_datetime

    if _text_looks_datetime(stripped):
        parsed = pd.to_datetime(stripped, errors="coerce", utc=True, format="mixed")
        if parsed.notna().all():
            # Non-capturing group: a capturing one makes pandas warn on every load.
            has_zone = stripped.head(200).str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$").any()
            parsed = parsed if has_zone else parsed.dt.tz_localize(None)
            return _unify_datetime(_expand(parsed, codes))
    return col


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
