"""SQL readers: any SQLAlchemy URL (streamed, sampled by position) and DuckDB files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.data._base import DataSource, register_source
from mlwright.data.sources._common import (
    _DUCKDB_EXT,
    _check_file,
    _path_of,
    _require_columns,
    _sample_positions,
)
from mlwright.exceptions import DataSourceError

__all__ = ["DuckDBSource", "SQLSource"]

log = get_logger(__name__)


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
