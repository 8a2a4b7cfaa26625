"""API keys: created once (the plain key is shown only then), kept as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from mlwright.exceptions import ServingError
from mlwright.store import api_keys, open_database

__all__ = ["PREFIX", "active_hashes", "create_key", "hash_key", "list_keys", "revoke_key"]

PREFIX = "mlw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _engine(database: str | Engine) -> Engine:
    return open_database(database) if isinstance(database, str) else database


def create_key(database: str | Engine, name: str) -> tuple[str, str]:
    """A new key named ``name``: returns (id, key). Only its hash is stored."""
    if not name.strip():
        raise ServingError("An API key needs a name (who or what uses it), e.g. 'dashboard'.")
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = secrets.token_hex(4)
    with _engine(database).begin() as conn:
        conn.execute(api_keys.insert().values(id=key_id, name=name.strip(),
                                              hash=hash_key(key), created=time.time()))
    return key_id, key


def revoke_key(database: str | Engine, id_or_name: str) -> int:
    """Revoke the key with this id (or every active key with this name); returns how many."""
    with _engine(database).begin() as conn:
        result = conn.execute(
            update(api_keys)
            .where(or_(api_keys.c.id == id_or_name, api_keys.c.name == id_or_name))
            .where(api_keys.c.revoked.is_(None))
            .values(revoked=time.time()))
        count = int(result.rowcount or 0)
    if count == 0:
        raise ServingError(
            f"No active API key has the id or name {id_or_name!r}; list them with "
            f"'mlwright keys list'.")
    return count


def list_keys(database: str | Engine) -> list[dict[str, Any]]:
    """Every key's id, name, created and revoked times (never the key)."""
    with _engine(database).connect() as conn:
        rows = conn.execute(select(api_keys.c.id, api_keys.c.name, api_keys.c.created,
                                   api_keys.c.revoked).order_by(api_keys.c.created)).all()
    return [dict(r._mapping) for r in rows]


def active_hashes(database: str | Engine) -> frozenset[str]:
    with _engine(database).connect() as conn:
        rows = conn.execute(select(api_keys.c.hash).where(api_keys.c.revoked.is_(None))).all()
    return frozenset(r[0] for r in rows)
