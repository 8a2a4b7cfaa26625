"""Tables of the prediction log and of label feedback (SQLAlchemy Core, any database URL).

The server writes them (asynchronously, in batches); ``monitor/`` and ``loop/`` read them.
One row per *record* scored, so a 100-row request writes 100 rows sharing its request id.
JSON columns hold text (portable across SQLite and PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Engine

__all__ = ["api_keys", "feedback", "metadata", "open_database", "predictions"]

metadata = MetaData()

predictions = Table(
    "predictions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
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
# is ever read. Records with contract violations, rare, have an index of their own.
Index("ix_predictions_window", predictions.c.model, predictions.c.ts, predictions.c.role,
      predictions.c.version, predictions.c.status, predictions.c.row)
Index("ix_predictions_violations", predictions.c.model, predictions.c.ts,
      sqlite_where=predictions.c.violations.is_not(None),
      postgresql_where=predictions.c.violations.is_not(None))
Index("ix_predictions_request", predictions.c.request_id, predictions.c.row)
Index("ix_predictions_key", predictions.c.key)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64)),
    Column("row", Integer),
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
)


def open_database(url: str, *, create: bool = True) -> Engine:
    """The engine for ``url`` with the log tables created (SQLite gets WAL and a busy
    timeout; see ``mlwright._db``)."""
    from mlwright._db import open_database as _open

    engine = _open(url, metadata if create else None)
    if create:
        # Logs written by an older version lack newer indexes; create_all only adds those
        # of new tables (a one-off cost of a few seconds per million records).
        from sqlalchemy.schema import CreateIndex

        with engine.begin() as conn:
            for table in (predictions, feedback):
                for index in table.indexes:
                    conn.execute(CreateIndex(index, if_not_exists=True))
    return engine
