"""The project database: one schema, one engine cache, migrations.

A shared foundation (it imports only SQLAlchemy, :mod:`mlwright.exceptions` and the
library's logger), so every stage may use it:

* :mod:`~mlwright.store.schema`: every table in one ``metadata``;
* :mod:`~mlwright.store.engine`: :func:`database_url`, :func:`open_database` (one cached
  engine per URL; SQLite with WAL and a busy timeout, PostgreSQL through psycopg 3 with a
  pool that survives a restart; the schema brought up to date), :func:`mlflow_uri` (MLflow
  in its own schema of a shared PostgreSQL database), :func:`insert_new` (idempotent
  appends);
* :mod:`~mlwright.store.migrate`: the ``schema_version`` row and idempotent creation;
* :mod:`~mlwright.store.window`: what a window of the prediction log is (``"5000"``, ``"1d"``);
* :mod:`~mlwright.store.feedback`: the one join of predictions with their feedback labels.
"""

from __future__ import annotations

from mlwright.store.engine import (
    MLFLOW_SCHEMA,
    copy_new,
    database_url,
    get_engine,
    insert_new,
    is_postgres,
    mlflow_uri,
    normalize_url,
    open_database,
    project_database_of,
)
from mlwright.store.feedback import labelled_records, unmatched_reasons
from mlwright.store.migrate import current_version, migrate
from mlwright.store.schema import (
    SCHEMA_VERSION,
    api_keys,
    audit,
    events,
    feedback,
    float_text,
    loop_state,
    metadata,
    monitor_windows,
    predictions,
    schema_version,
)
from mlwright.store.window import WindowSpec, parse_window, window_filter

__all__ = ["MLFLOW_SCHEMA", "SCHEMA_VERSION", "WindowSpec", "api_keys", "audit",
           "copy_new", "current_version", "database_url", "events", "feedback", "float_text",
           "get_engine", "insert_new", "is_postgres", "labelled_records", "loop_state", "metadata",
           "migrate", "mlflow_uri", "monitor_windows", "normalize_url", "open_database",
           "parse_window", "predictions", "project_database_of", "schema_version",
           "unmatched_reasons", "window_filter"]
