"""Every table of the project database, in one :data:`metadata`.

The server writes ``predictions`` and ``feedback`` (one row per *record* scored, so a
100-row request writes 100 rows sharing its request id), ``api_keys`` holds the server's
keys, ``events`` the monitor's alerts, ``audit`` alias moves and loop decisions,
``loop_state`` the loop's trigger memory, ``monitor_windows`` the monitor's summaries of
closed time windows (what the dashboard charts, computed once), and ``schema_version``
which version of this schema the database holds (see :mod:`mlwright.store.migrate`).

Only portable types: JSON is kept as text and times as unix seconds (floats), so the same
definitions serve SQLite (embedded default) and PostgreSQL (shared). The log's ids are
64-bit on PostgreSQL (SQLite's rowid is already).

The prediction log is append-only: nothing updates or deletes its rows, and a record is
logged once: the unique index on (request id, record index, role, arrival time) lets the
log writer write a batch again after a database restart without a duplicate (two requests
that reuse a caller's ``x-request-id`` arrive at different times and are both kept).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["SCHEMA_VERSION", "api_keys", "audit", "events", "feedback", "loop_state",
           "metadata", "monitor_windows", "predictions", "schema_version"]

#: The version :func:`mlwright.store.migrate.migrate` brings a database to. Raise it with
#: each change to the tables below, and add the step that upgrades an older database.
# 2: api_keys.scopes and api_keys.rate; 3: ux_predictions_record; 4: monitor_windows
SCHEMA_VERSION = 4

#: A log's id: BIGINT on PostgreSQL (a shared log passes 2**31 records), INTEGER on SQLite
#: (only an INTEGER PRIMARY KEY is the rowid, and autoincrements).
LOG_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()


class float_text(FunctionElement[str]):
    """A float column as text that reads back as the same float on every backend (the
    monitor concatenates times and latencies in the database): SQLite's CAST keeps 15
    significant digits, so there it is ``printf('%!.17g', x)``; PostgreSQL's CAST already
    writes the shortest exact form."""

    type = String()
    inherit_cache = True


@compiles(float_text)
def _float_text(element: float_text, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS VARCHAR)"


@compiles(float_text, "sqlite")
def _float_text_sqlite(element: float_text, compiler: Any, **kw: Any) -> str:
    return f"printf('%!.17g', {compiler.process(element.clauses, **kw)})"


schema_version = Table(
    "schema_version", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("version", Integer, nullable=False),
    Column("ts", Float, nullable=False),             # unix seconds of the last migration
)

# --- the prediction log (written by serve/, read by monitor/ and loop/) -------------------
predictions = Table(
    "predictions", metadata,
    Column("id", LOG_ID, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("row", Integer, nullable=False),          # index of the record in its request
    Column("ts", Float, nullable=False),             # unix seconds, when the request arrived
    Column("model", String(200), nullable=False),    # registered model name
    Column("version", String(64), nullable=False),   # model version that answered (or shadowed)
    Column("role", String(16), nullable=False),      # champion | challenger | shadow
    Column("key", String(200)),                      # the caller's own id, for feedback joins
    Column("inputs", Text, nullable=False),          # JSON object: the record as validated
    Column("prediction", Text),                      # JSON scalar: label or value
    Column("proba", Text),                           # JSON list, in the model's class order
    Column("latency_ms", Float),
    Column("status", Integer, nullable=False),       # HTTP status of the record (200, 422)
    Column("violations", Text),                      # JSON list of contract violations
)
# The monitor's window index: it bounds a window by time and counts its records by version,
# status and role without touching the rows (covering), so only the sampled records' JSON
# is ever read. Records with contract violations, rare, have an index of their own. On
# PostgreSQL the window reads are index-only scans of it (the append-only table is kept
# all-visible by autovacuum): their cost follows the window, not the log (see
# docs/decisions/, PostgreSQL as the shared store, for the plans and figures).
Index("ix_predictions_window", predictions.c.model, predictions.c.ts, predictions.c.role,
      predictions.c.version, predictions.c.status, predictions.c.row)
Index("ix_predictions_violations", predictions.c.model, predictions.c.ts,
      sqlite_where=predictions.c.violations.is_not(None),
      postgresql_where=predictions.c.violations.is_not(None))
# A record is logged once (see above); its prefix serves the feedback join's lookups by
# (request_id, row). Version 3 replaced the plain index ix_predictions_request with it.
Index("ux_predictions_record", predictions.c.request_id, predictions.c.row,
      predictions.c.role, predictions.c.ts, unique=True)
Index("ix_predictions_key", predictions.c.key)

feedback = Table(
    "feedback", metadata,
    Column("id", LOG_ID, primary_key=True, autoincrement=True),
    Column("request_id", String(64)),
    Column("row", Integer),                          # NULL: the request's record 0
    Column("key", String(200)),
    Column("label", Text, nullable=False),           # JSON scalar: the true label or value
    Column("ts", Float, nullable=False),
)
Index("ix_feedback_request", feedback.c.request_id, feedback.c.row)
Index("ix_feedback_key", feedback.c.key)

# API keys of the server: only a SHA-256 of each key is kept (keys are 256-bit random
# tokens, so a fast hash is enough; a stolen table does not give a usable key).
api_keys = Table(
    "api_keys", metadata,
    Column("id", String(16), primary_key=True),      # public id, shown by `keys list`
    Column("name", String(200), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("created", Float, nullable=False),
    Column("revoked", Float),                        # unix seconds; NULL while active
    # Space-separated scopes (predict feedback read admin); NULL: every scope, as a key
    # created before scopes existed has.
    Column("scopes", String(200)),
    Column("rate", String(64)),                      # e.g. "100/second"; NULL: serve.rate_limit
)

# --- the monitor's alerts ----------------------------------------------------------------
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("model", String(200), nullable=False),
    Column("source", String(32), nullable=False),     # "monitor"
    Column("kind", String(64), nullable=False),       # dataset_drift, feature_drift, ...
    Column("severity", String(16), nullable=False),   # warning | critical
    Column("message", Text, nullable=False),
    Column("payload", Text),                          # JSON details
)
Index("ix_events_model_ts", events.c.model, events.c.ts)

# --- the registry's and the loop's audit log ---------------------------------------------
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),              # unix seconds
    Column("action", String(64), nullable=False),     # promote, rollback, register, refuse, ...
    Column("name", String(200), nullable=False),      # registered model name
    Column("version", String(64)),                    # the version acted on
    Column("from_version", String(64)),               # e.g. the champion it replaced
    Column("actor", String(200), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("evidence", Text),                         # JSON object
)
Index("ix_audit_name", audit.c.name, audit.c.id)

# --- the loop's trigger memory: one JSON value per key -----------------------------------
loop_state = Table(
    "loop_state", metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),           # JSON
    Column("ts", Float, nullable=False),
)

# --- the monitor's summaries of time windows (mlwright.monitor.history) ------------------
# One row per model, bucket length and bucket end: a window (end - step, end] of the log
# summarised once (traffic, drift, quality, live performance) so that charts over months
# read a few hundred rows instead of the log. A row computed long enough after its end is
# final; a younger one is recomputed now and then (labels arrive late).
monitor_windows = Table(
    "monitor_windows", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("step", Integer, nullable=False),          # the bucket's length in seconds
    Column("end_ts", Float, nullable=False),          # unix seconds; a multiple of step
    Column("computed", Float, nullable=False),        # unix seconds
    Column("n_records", Integer, nullable=False),
    Column("summary", Text, nullable=False),          # JSON (monitor.history.summarize)
)
Index("ix_monitor_windows", monitor_windows.c.model, monitor_windows.c.step,
      monitor_windows.c.end_ts, unique=True)
