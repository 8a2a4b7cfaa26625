"""The project database's engine (prediction log, feedback, keys, events, audit, loop state),
shared by every stage. SQLite is made safe for several processes: WAL so readers (the
monitor) never block the writer (the server), and a busy timeout instead of "database is
locked" when two processes write at once. One cached engine per URL and process.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine

__all__ = ["open_database"]

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_database(url: str, metadata: MetaData | None = None) -> Engine:
    """One cached engine per URL, with ``metadata``'s tables created if missing."""
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
    if metadata is not None:
        # checkfirst: concurrent processes may both try; DDL in SQLite is transactional.
        try:
            metadata.create_all(engine, checkfirst=True)
        except Exception:  # another process created it between the check and the CREATE
            metadata.create_all(engine, checkfirst=True)
    return engine
