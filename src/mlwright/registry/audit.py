"""The audit log: every alias change (promote, rollback, challenger, delete) and every
decision of the retraining loop, with who, why and the evidence.

A SQLAlchemy Core table ``audit`` in the project database (``store.database_url()``), so it
works on SQLite by default and on any database a team already runs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, select

from mlwright._db import open_database

__all__ = ["AuditLog", "audit_table"]

_metadata = MetaData()

audit_table = Table(
    "audit", _metadata,
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
Index("ix_audit_name", audit_table.c.name, audit_table.c.id)


class AuditLog:
    """Append-only log of registry and loop decisions.

    >>> log = AuditLog("sqlite:///.mlwright/mlwright.db")
    >>> log.record("promote", "churn", "3", from_version="2", actor="cli", reason="better AUC")
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._engine = open_database(database_url, _metadata)

    def record(self, action: str, name: str, version: str | None, *,
               from_version: str | None = None, actor: str = "", reason: str = "",
               evidence: dict[str, Any] | None = None) -> int:
        """Append one entry; returns its id."""
        row = {"ts": time.time(), "action": action, "name": name,
               "version": None if version is None else str(version),
               "from_version": None if from_version is None else str(from_version),
               "actor": actor or "", "reason": reason or "",
               "evidence": None if evidence is None else json.dumps(evidence, default=str)}
        with self._engine.begin() as conn:
            result = conn.execute(audit_table.insert().values(**row))
            key = result.inserted_primary_key
        return int(key[0]) if key else 0

    def entries(self, name: str | None = None, *, limit: int | None = None
                ) -> list[dict[str, Any]]:
        """Entries oldest first (``name`` filters one model); evidence parsed back to a dict."""
        query = select(audit_table).order_by(audit_table.c.id)
        if name is not None:
            query = query.where(audit_table.c.name == name)
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        if limit is not None:
            rows = rows[-limit:]
        for row in rows:
            row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else None
        return rows
