"""The tables of a project database and the index names of each, read back through
SQLAlchemy's inspector (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect


def layout(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {t: {ix["name"] for ix in inspector.get_indexes(t)}
                for t in inspector.get_table_names()}
    finally:
        engine.dispose()
