"""The audit log: every alias change (promote, rollback, challenger, delete) and every
decision of the retraining loop, with who, why and the evidence.

The ``audit`` table of the project database (:mod:`mlwright.store`), so it works on SQLite
by default and on any database a team already runs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from mlwright._json import dumps
from mlwright.store import audit as audit_table
from mlwright.store import open_database

__all__ = ["AuditLog"]


class AuditLog:
    """Append-only log of registry and loop decisions.

    >>> log = AuditLog("sqlite:///.mlwright/mlwright.db")
    >>> log.record("promote", "churn", "3", from_version="2", actor="cli", reason="better AUC")
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._engine = open_database(database_url)

    def record(self, action: str, name: str, version: str | None, *,
               from_version: str | None = None, actor: str = "", reason: str = "",
               evidence: dict[str, Any] | None = None) -> int:
        """Append one entry; returns its id."""
        row = {"ts": time.time(), "action": action, "name": name,
               "version": None if version is None else str(version),
               "from_version": None if from_version is None else str(from_version),
               "actor": actor or "", "reason": reason or "",
               # Strict JSON: a non-finite score in the evidence is null, not Infinity.
               "evidence": None if evidence is None else dumps(evidence)}
        with self._engine.begin() as conn:
            result = conn.execute(audit_table.insert().values(**row))
            key = result.inserted_primary_key
        return int(key[0]) if key else 0

    def entries(self, name: str | None = None, *, limit: int | None = None,
                since: float | None = None, until: float | None = None
                ) -> list[dict[str, Any]]:
        """Entries oldest first (``name`` filters one model, ``since``/``until`` a time
        range, ``limit`` keeps the newest); evidence parsed back to a dict."""
        query = select(audit_table).order_by(audit_table.c.id.desc())
        query = self._filtered(query, name, since, until)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        rows.reverse()
        return self._parsed(rows)

    def page(self, name: str | None = None, *, offset: int = 0, limit: int = 50,
             since: float | None = None, until: float | None = None
             ) -> tuple[list[dict[str, Any]], int]:
        """One page of entries, newest first, and how many there are in all (the
        dashboard's paginated audit log: the database skips, nothing else is read)."""
        from sqlalchemy import func

        query = self._filtered(select(audit_table).order_by(audit_table.c.id.desc()),
                               name, since, until).offset(max(0, offset)).limit(limit)
        count = self._filtered(select(func.count()).select_from(audit_table), name, since,
                               until)
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            total = int(conn.execute(count).scalar_one())
        return self._parsed(rows), total

    @staticmethod
    def _filtered(query: Any, name: str | None, since: float | None,
                  until: float | None) -> Any:
        if name is not None:
            query = query.where(audit_table.c.name == name)
        if since is not None:
            query = query.where(audit_table.c.ts >= since)
        if until is not None:
            query = query.where(audit_table.c.ts <= until)
        return query

    @staticmethod
    def _parsed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else None
        return rows
