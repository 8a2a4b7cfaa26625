"""The project database's engines: one cached engine (and pool) per URL and process.

SQLite is made safe for several processes: WAL so readers (the monitor) never block the
writer (the server), and a busy timeout instead of "database is locked" when two
processes write at once. :func:`open_database` also brings the schema up to date, once
per URL and process, so every caller finds every table.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

__all__ = ["database_url", "get_engine", "open_database"]

_engines: dict[str, Engine] = {}
_migrated: weakref.WeakSet[Engine] = weakref.WeakSet()
_lock = threading.Lock()


def database_url(root: str | Path = ".mlwright", database: str | None = None) -> str:
    """``database`` when set, else the embedded default: ``sqlite:///ROOT/mlwright.db``
    (absolute, so every process of the project finds the same file)."""
    return database or f"sqlite:///{(Path(root) / 'mlwright.db').resolve().as_posix()}"


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def get_engine(url: str) -> Engine:
    """The process's engine for ``url`` (created on first use; the schema is not touched)."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite:///"):
                path = url.removeprefix("sqlite:///")
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, future=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            _engines[url] = engine
        return engine


def open_database(database: str | Engine) -> Engine:
    """The engine for ``database`` (a URL, or an engine already made) with the project's
    schema created or upgraded; the migration runs once per engine and process."""
    from mlwright.store.migrate import migrate

    engine = get_engine(database) if isinstance(database, str) else database
    if engine not in _migrated:
        with _lock:
            if engine not in _migrated:
                migrate(engine)
                _migrated.add(engine)
    return engine
