"""Creating and upgrading the project database's schema, in one place.

:func:`migrate` is idempotent and safe when several processes (a server, a monitor, the
loop) open a new database at once: tables and indexes are created only when missing, and
the ``schema_version`` row records which :data:`SCHEMA_VERSION` the database holds. A
database written before the row existed is version 0; its missing tables and indexes are
added (logs of older versions lack newer indexes: a one-off cost of a few seconds per
million records). Columns added to an existing table since (version 2: ``api_keys.scopes``
and ``api_keys.rate``) are added to older databases as NULL, which each column's reader
takes as "as before" (a key without scopes has them all). Version 3 makes a logged record
unique (``ux_predictions_record`` replaces ``ix_predictions_request``); an older log that
holds the same record twice keeps its plain index and is told so. A database of a newer
mlwright is refused rather than altered. On PostgreSQL, migrations of one database take
an advisory lock, and on SQLite the write lock (``BEGIN IMMEDIATE``), so processes that
start together migrate one after the other.
"""

from __future__ import annotations

import time

from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from mlwright._logging import get_logger
from mlwright.exceptions import ConfigError
from mlwright.store.schema import SCHEMA_VERSION, metadata, schema_version

__all__ = ["current_version", "migrate"]

log = get_logger(__name__)


def current_version(conn: Connection) -> int:
    """The schema version a database holds: 0 without a ``schema_version`` row."""
    if not inspect(conn).has_table(schema_version.name):
        return 0
    found = conn.execute(select(schema_version.c.version).where(
        schema_version.c.id == 1)).scalar()
    return int(found or 0)


#: Indexes a later version replaced: dropped once their successor exists.
_REPLACED = {"ux_predictions_record": ("predictions", "ix_predictions_request")}
#: Any constant: the key of the advisory lock that serialises migrations on PostgreSQL.
_MIGRATION_LOCK = 0x6D6C7772  # "mlwr"


def _create_missing(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
    # create_all adds the indexes of the tables it creates only: older tables get theirs here.
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        have = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name in have:
                continue
            try:
                with conn.begin_nested():  # a failed CREATE must not end the transaction
                    index.create(conn)
            except IntegrityError:
                log.warning(
                    "The project database's %s table holds rows that break the unique index "
                    "%s (written before version 3); it keeps its plain index, and a record "
                    "written again after a failed commit may be logged twice.",
                    table.name, index.name)
                continue
            replaced = _REPLACED.get(str(index.name))
            if replaced is not None and replaced[1] in have:
                quote = conn.dialect.identifier_preparer.quote
                conn.execute(text(f"DROP INDEX {quote(replaced[1])}"))


def _add_missing_columns(conn: Connection) -> None:
    """Add the columns a table gained since the database was made (nullable ones only: old
    rows read NULL, and every such column says what NULL means)."""
    inspector = inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:  # a schema change that needs a real upgrade step
                raise ConfigError(
                    f"The project database lacks the column {table.name}.{column.name}, which "
                    f"cannot be added to existing rows; this is a bug in mlwright's "
                    f"migrations, please report it.")
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {quote(table.name)} "
                              f"ADD COLUMN {quote(column.name)} {kind}"))


def _migrate_once(engine: Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # released at commit
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        elif conn.dialect.name == "sqlite":
            # The write lock before the first look: pysqlite runs DDL outside any transaction
            # it began, so first opens racing would each see no tables and create them.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        found = current_version(conn)
        if found > SCHEMA_VERSION:
            raise ConfigError(
                f"The project database {engine.url.render_as_string(hide_password=True)} "
                f"has schema version {found}, newer than this mlwright's {SCHEMA_VERSION}. "
                f"Upgrade mlwright, or point store.database at another database.")
        if found == SCHEMA_VERSION:
            return
        _create_missing(conn)
        # Upgrade steps from ``found`` to SCHEMA_VERSION: 1 -> 2 added nullable columns;
        # 2 -> 3 an index, 3 -> 4 a table (both created above).
        _add_missing_columns(conn)
        if found == 0:
            conn.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION,
                                                        ts=time.time()))
        else:
            conn.execute(update(schema_version).where(schema_version.c.id == 1).values(
                version=SCHEMA_VERSION, ts=time.time()))
    log.debug("project database %s at schema version %d (was %d)",
              engine.url.render_as_string(hide_password=True), SCHEMA_VERSION, found)


def migrate(engine: Engine) -> None:
    """Bring ``engine``'s database to :data:`SCHEMA_VERSION` (nothing to do when it is)."""
    for attempt in range(3):
        try:
            _migrate_once(engine)
            return
        except (IntegrityError, OperationalError, ProgrammingError):
            # Another process created a table or the version row between our check and
            # our write (committed by now): look again.
            if attempt == 2:
                raise
