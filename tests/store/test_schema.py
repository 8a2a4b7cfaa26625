"""The project database: one schema, idempotent migrations, one engine per URL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from mlwright.exceptions import ConfigError
from mlwright.store import (
    SCHEMA_VERSION,
    current_version,
    database_url,
    get_engine,
    metadata,
    migrate,
    open_database,
    predictions,
    schema_version,
)
from schema_layout import layout as read_layout  # tests/schema_layout.py

TABLES = {"predictions", "feedback", "api_keys", "events", "audit", "loop_state",
          "monitor_windows", "schema_version"}


def test_one_metadata_holds_every_table_the_stages_use() -> None:
    from mlwright.loop import state
    from mlwright.monitor import alerts, history
    from mlwright.registry import audit
    from mlwright.serve import keys, logwriter

    assert set(metadata.tables) == TABLES
    used = [logwriter.predictions, logwriter.feedback, keys.api_keys, alerts.events,
            audit.audit_table, state.loop_state, history.mw_table]
    assert all(metadata.tables[t.name] is t for t in used)


def test_the_schema_compiles_for_postgresql() -> None:
    """No SQLite-only SQL in the definitions (tests/postgres runs them on a real server)."""
    dialect = postgresql.dialect()
    for table in metadata.sorted_tables:
        assert "CREATE TABLE" in str(CreateTable(table).compile(dialect=dialect))
        for index in table.indexes:
            str(CreateIndex(index).compile(dialect=dialect))
    partial = next(ix for ix in predictions.indexes if ix.name == "ix_predictions_violations")
    assert "WHERE" in str(CreateIndex(partial).compile(dialect=dialect))


def test_create_on_a_fresh_file_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'deep' / 'project.db').as_posix()}"
    engine = get_engine(url)                         # creates the folder, not the schema
    migrate(engine)
    first = read_layout(url)
    assert set(first) == TABLES
    assert "ix_predictions_window" in first["predictions"]
    migrate(engine)
    migrate(create_engine(url))                      # another process, same file
    assert read_layout(url) == first
    with engine.connect() as conn:
        rows = conn.execute(select(schema_version)).all()
        assert len(rows) == 1 and tuple(rows[0][:2]) == (1, SCHEMA_VERSION)
        assert current_version(conn) == SCHEMA_VERSION


def test_concurrent_first_opens_create_one_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'race.db').as_posix()}"
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            migrate(create_engine(url, connect_args={"timeout": 30}))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    engine = create_engine(url)
    with engine.connect() as conn:
        assert len(conn.execute(select(schema_version)).all()) == 1
    assert set(read_layout(url)) == TABLES


def test_an_older_database_gets_its_missing_tables_and_indexes(tmp_path: Path) -> None:
    """A log written before the store existed: tables without the newer indexes, no
    version row (version 0)."""
    url = f"sqlite:///{(tmp_path / 'old.db').as_posix()}"
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(text(str(CreateTable(predictions).compile(old))))
    assert read_layout(url) == {"predictions": set()}
    migrate(old)
    layout = read_layout(url)
    assert set(layout) == TABLES
    assert {ix.name for ix in predictions.indexes} <= layout["predictions"]


def test_a_version_1_database_gains_the_new_columns_as_null(tmp_path: Path) -> None:
    """Version 2 added api_keys.scopes and api_keys.rate: an older database's keys keep
    working with NULL there (every scope, the server's default rate)."""
    url = f"sqlite:///{(tmp_path / 'v1.db').as_posix()}"
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(text("CREATE TABLE api_keys (id VARCHAR(16) PRIMARY KEY, name "
                          "VARCHAR(200) NOT NULL, hash VARCHAR(64) NOT NULL UNIQUE, created "
                          "FLOAT NOT NULL, revoked FLOAT)"))
        conn.execute(text("INSERT INTO api_keys VALUES ('k', 'old', 'h', 0, NULL)"))
        conn.execute(text(str(CreateTable(schema_version).compile(old))))
        conn.execute(schema_version.insert().values(id=1, version=1, ts=0))
    migrate(old)
    migrate(create_engine(url))                      # idempotent
    with old.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        row = conn.execute(text("SELECT id, scopes, rate FROM api_keys")).one()
    assert tuple(row) == ("k", None, None)
    assert set(read_layout(url)) == TABLES


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'new.db').as_posix()}"
    engine = create_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    newer = SCHEMA_VERSION + 1
    with pytest.raises(ConfigError, match=rf"schema version {newer}, newer than this mlwright"):
        migrate(engine)


def test_one_engine_per_url_with_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'a.db').as_posix()}"
    engine = open_database(url)
    assert open_database(url) is engine and get_engine(url) is engine
    assert open_database(engine) is engine
    assert open_database(f"sqlite:///{(tmp_path / 'b.db').as_posix()}") is not engine
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_database_url_defaults_to_sqlite_in_the_store_folder(tmp_path: Path) -> None:
    assert database_url(tmp_path) == f"sqlite:///{(tmp_path / 'mlwright.db').as_posix()}"
    assert database_url(tmp_path, "postgresql://h/db") == "postgresql+psycopg://h/db"
    from mlwright.config import StoreConfig

    assert StoreConfig(root=tmp_path).database_url() == database_url(tmp_path)


def _version_2_log(url: str, rows: list[dict[str, object]]) -> None:
    """A version 2 database: the log with its plain (request_id, row) index, and ``rows``."""
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(text(str(CreateTable(predictions).compile(old))))
        conn.execute(text("CREATE INDEX ix_predictions_request ON predictions (request_id, row)"))
        conn.execute(text(str(CreateTable(schema_version).compile(old))))
        conn.execute(schema_version.insert().values(id=1, version=2, ts=0))
        if rows:
            conn.execute(predictions.insert(), rows)
    old.dispose()


def _record(ts: float) -> dict[str, object]:
    return {"request_id": "r", "row": 0, "ts": ts, "model": "m", "version": "1",
            "role": "champion", "inputs": "{}", "status": 200}


def test_version_3_makes_a_logged_record_unique(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'v2.db').as_posix()}"
    _version_2_log(url, [_record(1.0), _record(2.0)])  # one id reused at two times: kept
    migrate(create_engine(url))
    layout = read_layout(url)["predictions"]
    assert "ux_predictions_record" in layout and "ix_predictions_request" not in layout
    with create_engine(url).connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        assert conn.execute(text("SELECT count(*) FROM predictions")).scalar() == 2


def test_an_older_log_with_a_record_twice_keeps_its_plain_index(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{(tmp_path / 'dup.db').as_posix()}"
    _version_2_log(url, [_record(1.0), _record(1.0)])
    migrate(create_engine(url))
    layout = read_layout(url)["predictions"]
    assert "ix_predictions_request" in layout and "ux_predictions_record" not in layout
    assert "ux_predictions_record" in caplog.text and "plain index" in caplog.text
    with create_engine(url).connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
