"""The project database on a real PostgreSQL server: the same schema, migrations, window
and feedback join as on SQLite, an append-only log without duplicates, and window reads
that stay on the window index (EXPLAIN)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from mlwright.store import (
    SCHEMA_VERSION,
    current_version,
    feedback,
    insert_new,
    labelled_records,
    metadata,
    migrate,
    open_database,
    parse_window,
    predictions,
    window_filter,
)
from schema_layout import layout as read_layout  # tests/schema_layout.py

TABLES = set(metadata.tables)


def test_migrations_create_the_schema_once_even_when_replicas_start_together(
        pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        engine = create_engine(pg_url)
        try:
            migrate(engine)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    layout = read_layout(pg_url)
    assert set(layout) == TABLES
    for table in metadata.sorted_tables:
        assert {ix.name for ix in table.indexes} <= layout[table.name]
    assert "ix_predictions_request" not in layout["predictions"]
    engine = open_database(pg_url)
    migrate(engine)                                   # idempotent
    assert read_layout(pg_url) == layout
    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        kinds = {c["name"]: str(c["type"]) for c in inspect(conn).get_columns("predictions")}
    assert kinds["id"] == "BIGINT"                    # a shared log passes 2**31 records


def _rows(n_requests: int, rows_each: int = 3, *, model: str = "m") -> list[dict[str, Any]]:
    out = []
    for k in range(n_requests):
        for role in ("champion", "shadow"):
            out += [{"request_id": f"r{k}", "row": r, "ts": 1000.0 + 60 * k, "model": model,
                     "version": str(1 + k // 5), "role": role, "key": f"c{k}-{r}",
                     "inputs": json.dumps({"x": k, "r": r}), "prediction": json.dumps(k % 2),
                     "proba": None, "latency_ms": 1.0, "status": 200 if k % 7 else 422,
                     "violations": None if k % 7 else "[]"} for r in range(rows_each)]
    return out


def test_the_log_keeps_each_record_once(pg_url: str) -> None:
    engine = open_database(pg_url)
    rows = _rows(4)
    with engine.begin() as conn:
        conn.execute(insert_new(predictions, "postgresql"), rows)
    with engine.begin() as conn:   # a batch written again after a lost commit answer
        conn.execute(insert_new(predictions, "postgresql"), rows)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(predictions)).scalar() == len(rows)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(predictions.insert(), rows[:1])  # a plain insert is refused
    same_id_later = {**rows[0], "ts": rows[0]["ts"] + 1}  # a caller reusing x-request-id
    with engine.begin() as conn:
        conn.execute(insert_new(predictions, "postgresql"), [same_id_later])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(predictions)).scalar() \
            == len(rows) + 1


def _fill(url: str, rows: list[dict[str, Any]], labels: list[dict[str, Any]]) -> Any:
    engine = open_database(url)
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
        conn.execute(feedback.insert(), labels)
    return engine


def _count(engine: Any, where: list[Any] | None) -> int:
    if where is None:
        return -1
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(*where)).scalar())


def _labelled(engine: Any, where: list[Any] | None) -> list[tuple[Any, ...]]:
    assert where is not None
    with engine.connect() as conn:
        joined = labelled_records(conn, where, [predictions.c.request_id.label("rid"),
                                                predictions.c.row.label("row")])
        assert joined is not None
        return sorted(tuple(r) for r in conn.execute(
            select(joined.c.pid, joined.c.rid, joined.c.row, joined.c.label)))


def test_windows_and_the_feedback_join_read_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    rows = _rows(20)
    labels = ([{"request_id": f"r{k}", "row": 1, "label": '"yes"', "ts": 5000.0 + k,
                "key": None}
               for k in range(0, 20, 3)]
              + [{"request_id": f"r{k}", "row": None, "label": '"no"', "ts": 5000.0,
                  "key": None}
                 for k in range(1, 20, 4)]
              + [{"request_id": None, "row": None, "key": f"c{k}-2", "label": '"no"',
                  "ts": 6000.0} for k in range(2, 20, 5)]
              + [{"request_id": "r3", "row": 1, "label": '"late"', "ts": 9000.0,
                  "key": None}])
    pg = _fill(pg_url, rows, labels)
    lite = _fill(f"sqlite:///{(tmp_path / 'same.db').as_posix()}", rows, labels)
    for spec, kwargs in [("1", {}), ("4", {}), ("10", {}), ("59", {}), ("500", {}),
                         ("3m", {}), ("10m", {"end": 1000.0 + 600}), ("1d", {}),
                         ("7", {"version": "2"}), ("5", {"roles": ("shadow",)})]:
        expected = window_filter(lite, "m", parse_window(spec), **kwargs)
        found = window_filter(pg, "m", parse_window(spec), **kwargs)
        assert _count(pg, found) == _count(lite, expected), spec
        assert _labelled(pg, found) == _labelled(lite, expected), spec
    assert window_filter(pg, "other", parse_window("1d")) is None
    assert ("r3", 1, '"late"') in {r[1:] for r in _labelled(pg, window_filter(
        pg, "m", parse_window("1000")))}


def _explain(conn: Any, statement: str, parameters: Any) -> str:
    plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
    return "\n".join(plan)


@pytest.mark.slow
def test_the_monitors_window_reads_stay_on_the_window_index(pg_url: str) -> None:
    """Every query the monitor sends for a window, planned on a 350,000-record log: each
    reads the window through a window index and none scans the table, so the cost follows
    the window, not the log (benchmarks/pg_store.py measures it at larger sizes)."""
    from mlwright.monitor.log import read_window

    engine = open_database(pg_url)
    with engine.begin() as conn:  # 300,000 records of one model, 10 a second, 1 in 10,000
        conn.execute(text(          # with violations; another model's 50,000 beside them
            "INSERT INTO predictions (request_id, row, ts, model, version, role, key, "
            "inputs, prediction, proba, latency_ms, status, violations) "
            "SELECT md5(i::text), 0, 1e9 + i / 10.0, CASE WHEN i % 7 = 0 THEN 'other' "
            "ELSE 'm' END, '1', 'champion', NULL, '{\"x\": ' || i || '}', '1', NULL, 1.5, "
            "CASE WHEN i % 10000 = 0 THEN 422 ELSE 200 END, "
            "CASE WHEN i % 10000 = 0 THEN '[]' END FROM generate_series(1, 350000) AS i"))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE predictions")
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "predictions" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        for window in ("5000", "1h"):
            got = read_window(engine, "m", parse_window(window), sample_rows=1000)
            assert got.n_records == (5000 if window == "5000" else 36000 * 6 // 7 + 1)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(seen) >= 8
    with engine.connect() as conn:
        plans = [_explain(conn, s, p) for s, p in seen]
    for (statement, _), plan in zip(seen, plans, strict=True):
        assert "Seq Scan on predictions" not in plan, f"{statement}\n{plan}"
        assert "ix_predictions_window" in plan or "ix_predictions_violations" in plan, \
            f"{statement}\n{plan}"
    # The window's edges (the N-th latest record, the last time) come off the index alone.
    edges = [plan for (statement, _), plan in zip(seen, plans, strict=True)
             if statement.lstrip().startswith(("SELECT predictions.ts", "SELECT max("))]
    assert len(edges) == 2
    assert all("Index Only Scan Backward using ix_predictions_window" in p for p in edges)


def test_the_log_writer_stores_on_postgresql_what_it_stores_on_sqlite(
        pg_url: str, tmp_path: Path) -> None:
    """The COPY path keeps every value as the executemany path does: text with tabs,
    newlines, backslashes, quotes and non-ASCII; missing values; a feedback item in the same
    batch; and a batch written twice adds nothing."""
    from mlwright.serve.logwriter import FeedbackEntry, LogWriter, PredictionEntry

    awkward = [{"name": "tab\there", "path": "C:\\new\\table", "note": 'say "hi"\nbye',
                "city": "Zürich ☃", "empty": "", "none": None, "n": 1.5e300}] * 3
    batch: list[Any] = [
        PredictionEntry("r1", 1.25, "m", "1", "champion", awkward, ["k\t1", None, "k3"],
                        ["Yes", "No", None], [[0.25, 0.75], [0.9, 0.1], [0.5, 0.5]], 3.5, 200,
                        {1: [{"field": "city", "rule": "unknown_category"}]}),
        PredictionEntry("r2", 2.5, "m", "1", "champion", awkward[:1], None, None, None, 0.25,
                        422),
        FeedbackEntry([{"request_id": "r1", "row": 2, "key": None, "label": "Yes",
                        "ts": 3.0}])]
    tables: list[list[tuple[Any, ...]]] = []
    for url in (pg_url, f"sqlite:///{(tmp_path / 'log.db').as_posix()}"):
        writer = LogWriter(open_database(url))
        writer._write(batch)
        writer._write(batch)                       # again: ON CONFLICT DO NOTHING
        engine = open_database(url)
        with engine.connect() as conn:
            tables.append([tuple(r) for r in conn.execute(
                select(predictions).order_by(predictions.c.id))]
                + [tuple(r) for r in conn.execute(select(feedback).order_by(feedback.c.id))])
    assert len(tables[0]) == 4 + 2                  # 4 records, the feedback item twice
    assert tables[0] == tables[1]


def test_a_database_that_cannot_be_reached_is_a_clear_error() -> None:
    from mlwright.exceptions import ConfigError
    from mlwright.testing.postgres import _free_port

    url = f"postgresql://someone:secret@127.0.0.1:{_free_port()}/mlwright"
    with pytest.raises(ConfigError) as err:
        open_database(url)
    message = str(err.value)
    assert message.startswith("Cannot reach the project database postgresql+psycopg://"
                              "someone:***@127.0.0.1:")
    assert "secret" not in message and "store.url or --store" in message
