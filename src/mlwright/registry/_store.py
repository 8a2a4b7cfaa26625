"""Where the registry lives: the MLflow tracking URI, its artifact folder and the project
database, and an MLflow client that stays quiet and never reaches the network."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlwright._logging import get_logger

__all__ = ["alias_lock", "client", "database_url_for", "local_artifact_root",
           "quiet_mlflow", "resolve_tracking_uri"]

log = get_logger(__name__)

_clients: dict[str, Any] = {}
_lock = threading.Lock()
_alias_locks: dict[str, threading.Lock] = {}

# MLflow defaults meant for notebooks: progress bars on stderr, telemetry, a git lookup per
# run, environment variables recorded into every model. None of them belong in a library.
_QUIET_ENV = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}


def quiet_mlflow() -> None:
    """Set MLflow's environment switches (only those the user has not set) and its log level."""
    import logging

    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        if logging.getLogger(name).level < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The URI given, else ``MLFLOW_TRACKING_URI``, else mlwright.toml's store, else
    ``sqlite:///.mlwright/mlflow.db``."""
    if tracking_uri:
        return tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from mlwright.config import CONFIG_FILE, StoreConfig, load_config

    if Path(CONFIG_FILE).exists():
        try:
            return load_config(CONFIG_FILE).store.resolved_tracking_uri()
        except Exception:  # an invalid config is reported by the command that reads it
            pass
    return StoreConfig.model_validate({}).resolved_tracking_uri()


def _prepare_postgres(uri: str) -> str:
    """psycopg 3 for a ``postgresql://`` URI; on the project's shared database, the
    ``mlflow`` schema that :func:`mlwright.store.mlflow_uri` points MLflow's sessions at,
    and MLflow's tables, made under an advisory lock (eight trainings that start at once
    on a new database would otherwise run MLflow's migrations eight times over)."""
    from mlwright.store import MLFLOW_SCHEMA, get_engine, normalize_url, project_database_of

    uri = normalize_url(uri)
    shared = project_database_of(uri)
    if shared is None or MLFLOW_SCHEMA not in uri:
        return uri
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import text

    with _advisory_lock(shared, _MLFLOW_INIT_LOCK):
        with get_engine(shared).begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {MLFLOW_SCHEMA}"))
        store = SqlAlchemyStore(uri, local_artifact_root(uri) or
                                str(_project_store().artifact_location()))
        store.engine.dispose()
    return uri


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///").split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else None
    return None


def _project_store() -> Any:
    """mlwright.toml's store section when the working folder has a valid one, else the
    defaults."""
    from mlwright.config import CONFIG_FILE, StoreConfig, load_config

    if Path(CONFIG_FILE).exists():
        try:
            return load_config(CONFIG_FILE).store
        except Exception:  # an invalid config is reported by the command that reads it
            pass
    return StoreConfig.model_validate({})


def local_artifact_root(uri: str) -> str | None:
    """For a sqlite store, artifacts live beside the database (``ROOT/artifacts``); for a
    database server, in mlwright.toml's ``store.artifacts`` (default ``ROOT/artifacts``:
    on several hosts, make it a folder they all reach); other URIs keep MLflow's default."""
    path = _sqlite_path(uri)
    if path is not None:
        return (path.resolve().parent / "artifacts").as_uri()
    from mlwright.store import project_database_of

    if project_database_of(uri) is not None:
        return str(_project_store().artifact_location())
    return None


def database_url_for(uri: str, database_url: str | None = None) -> str:
    """The project database: given, else beside a sqlite store, else the PostgreSQL
    database MLflow's tables are in, else the config's default."""
    if database_url:
        return database_url
    path = _sqlite_path(uri)
    if path is not None:
        from mlwright.store import database_url as default_url

        return default_url(path.resolve().parent)
    from mlwright.store import project_database_of

    shared = project_database_of(uri)
    if shared is not None:
        return shared
    return str(_project_store().database_url())


def _build_sqlite_store(tmp: Path, artifacts: str) -> None:
    """Run MLflow's migrations on a private file (not yet visible to anyone)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    # The private file needs no durability until it is complete: without a sync per
    # migration, building it takes seconds instead of half a minute on a busy disk.
    def fast(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    event.listen(Engine, "connect", fast)
    try:
        store = SqlAlchemyStore(f"sqlite:///{tmp.as_posix()}", artifacts)
        store.engine.dispose()
    finally:
        event.remove(Engine, "connect", fast)


def _publish(tmp: Path, path: Path) -> None:
    """Sync ``tmp`` once and link it to ``path`` unless another process got there first."""
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _private(path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    return tmp


def _template() -> Path | None:
    """An empty, fully migrated MLflow database for this MLflow version, built once per
    machine (~/.cache/mlwright): a new project store is then a file copy, not ~60 migrations."""
    import mlflow

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlwright"
    path = base / f"mlflow-{mlflow.__version__}-empty.db"
    if path.exists():
        return path
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = _private(path)
        _build_sqlite_store(tmp, (base / "artifacts").as_uri())
        _publish(tmp, path)
    except OSError as exc:  # a read-only home: build each store directly
        log.debug("no MLflow template database (%s)", exc)
        return None
    return path if path.exists() else None


def _create_sqlite_store(path: Path, uri: str) -> None:
    """Create a new MLflow sqlite database atomically.

    MLflow builds a database through dozens of alembic migrations; a process killed half-way
    would leave a database that no later command can open. So the database is made in a
    private file (a copy of a cached template) and linked into place; ``os.link`` never
    overwrites: if a concurrent process won the race, its database is kept and ours dropped.
    """
    import shutil
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private(path)
    artifacts = local_artifact_root(uri) or path.parent.as_uri()
    template = _template()
    if template is None:
        _build_sqlite_store(tmp, artifacts)
    else:
        shutil.copyfile(template, tmp)
        # The template's Default experiment points into the cache; point it here.
        with sqlite3.connect(tmp) as conn:
            conn.execute("UPDATE experiments SET artifact_location = ? WHERE "
                         "experiment_id = 0", (f"{artifacts.rstrip('/')}/0",))
        conn.close()
    _publish(tmp, path)


def client(tracking_uri: str) -> Any:
    """A cached ``MlflowClient`` for ``tracking_uri`` (tracking and registry on one URI)."""
    with _lock:
        cached = _clients.get(tracking_uri)
        if cached is not None:
            return cached
        quiet_mlflow()
        path = _sqlite_path(tracking_uri)
        uri = tracking_uri
        if path is not None and not path.exists():
            _create_sqlite_store(path.resolve(), tracking_uri)
        elif "://" in tracking_uri and tracking_uri.split(":", 1)[0].startswith("postgres"):
            uri = _prepare_postgres(tracking_uri)
        from mlflow import MlflowClient

        made = MlflowClient(tracking_uri=uri, registry_uri=uri)
        _clients[tracking_uri] = made
        return made


@contextlib.contextmanager
def alias_lock(tracking_uri: str) -> Iterator[None]:
    """Serialise alias changes on one store, across threads and processes.

    MLflow sets an alias by reading it and then inserting or updating the row, so two
    trainings that register at once can both find no champion and collide on the insert.
    For a sqlite store (one machine by nature) an exclusive ``flock`` on a file beside the
    database closes that window; on PostgreSQL (trainings on several hosts) a session-level
    advisory lock of the database does; other stores get a retry in the caller instead.
    """
    with _lock:
        local = _alias_locks.setdefault(tracking_uri, threading.Lock())
    with local:
        path = _sqlite_path(tracking_uri)
        try:
            import fcntl
        except ImportError:  # not POSIX: the in-process lock is all there is
            fcntl = None  # type: ignore[assignment]
        from mlwright.store import project_database_of

        shared = project_database_of(tracking_uri)
        if shared is not None:
            with _advisory_lock(shared):
                yield
            return
        if path is None or fcntl is None:
            yield
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.aliases.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield


#: Any constants: the advisory lock keys of alias changes and of MLflow's first migrations
#: on a PostgreSQL store.
_ALIAS_LOCK = 0x6D6C7761  # "mlwa"
_MLFLOW_INIT_LOCK = 0x6D6C7769  # "mlwi"


@contextlib.contextmanager
def _advisory_lock(database_url: str, key: int = _ALIAS_LOCK) -> Iterator[None]:
    """``pg_advisory_lock`` held on one connection of the project database while the block
    runs (released by unlock, or by the server when the connection dies with its process)."""
    from sqlalchemy import text

    from mlwright.store import get_engine

    with get_engine(database_url).connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
