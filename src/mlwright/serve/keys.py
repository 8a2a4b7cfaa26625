"""API keys: created once (the plain key is shown only then), kept as SHA-256 hashes, each
with its scopes (what it may call) and an optional rate limit of its own.

Scopes: ``predict`` (predictions and explanations), ``feedback`` (true labels), ``read``
(model, monitoring and metrics, every ``GET``) and ``admin`` (anything that changes the
server's or the loop's state, such as the retrain webhook; it grants every other scope too).
A key created without scopes has them all, as every key made before scopes existed does.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from mlwright.exceptions import ServingError
from mlwright.store import api_keys, open_database

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = ["PREFIX", "SCOPES", "UNLIMITED", "ApiKey", "active_keys",
           "create_key", "hash_key", "list_keys", "parse_rate", "revoke_key"]

PREFIX = "mlw_"
SCOPES = ("predict", "feedback", "read", "admin")
UNLIMITED = "unlimited"  # a key's rate that exempts it from serve.rate_limit


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An active key as the server checks it (never the key itself)."""

    id: str
    name: str
    scopes: frozenset[str]          # as granted
    rate: str | None                # its own limit, "unlimited", or None: serve.rate_limit
    allowed: frozenset[str] = field(init=False)  # what it may call (admin: every scope)

    def __post_init__(self) -> None:
        allowed = frozenset(SCOPES) if "admin" in self.scopes else self.scopes
        object.__setattr__(self, "allowed", allowed)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_rate(text: str, where: str) -> RateLimitItem:
    """The rate limit ``text`` names ("100/second", "1000 per hour", "10/2 minutes"),
    parsed by the limits package; ``where`` names the setting in the error message."""
    from limits import parse_many

    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if len(items) != 1 or items[0].amount < 1:
        raise ServingError(
            f"{where} is {text!r}, not a rate limit: expected one 'AMOUNT/UNIT' with an "
            f"amount of at least 1, such as '100/second', '1000/minute' or '10 per 2 "
            f"seconds' (units: second, minute, hour, day, month, year).")
    return items[0]


def _scopes(scopes: Iterable[str] | None) -> str | None:
    """The stored form of ``scopes``: NULL for every scope, else space-separated."""
    if scopes is None:
        return None
    chosen = {s.strip().lower() for s in scopes if s.strip()}
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise ServingError(f"Unknown API key scope {', '.join(map(repr, unknown))}: expected "
                           f"some of {', '.join(SCOPES)} (admin grants every scope).")
    if not chosen:
        raise ServingError(f"An API key needs at least one scope of {', '.join(SCOPES)}; "
                           f"give none to grant them all.")
    return " ".join(s for s in SCOPES if s in chosen)


def _engine(database: str | Engine) -> Engine:
    return open_database(database) if isinstance(database, str) else database


def create_key(database: str | Engine, name: str, scopes: Iterable[str] | None = None,
               rate: str | None = None) -> tuple[str, str]:
    """A new key named ``name``: returns (id, key). Only its hash is stored.

    ``scopes`` (default: all of :data:`SCOPES`) limit what it may call; ``rate`` ("100/second",
    or "unlimited") replaces the server's ``serve.rate_limit`` for this key.
    """
    if not name.strip():
        raise ServingError("An API key needs a name (who or what uses it), e.g. 'dashboard'.")
    stored_scopes = _scopes(scopes)
    if rate is not None:
        rate = rate.strip()
        if rate.lower() == UNLIMITED:
            rate = UNLIMITED
        else:
            parse_rate(rate, "The key's rate (--rate)")
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = secrets.token_hex(4)
    with _engine(database).begin() as conn:
        conn.execute(api_keys.insert().values(id=key_id, name=name.strip(),
                                              hash=hash_key(key), created=time.time(),
                                              scopes=stored_scopes, rate=rate))
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
    """Every key's id, name, scopes, rate, created and revoked times (never the key);
    ``scopes`` is a list (every scope for a key created without), ``rate`` None means the
    server's ``serve.rate_limit``."""
    with _engine(database).connect() as conn:
        rows = conn.execute(select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes,
                                   api_keys.c.rate, api_keys.c.created, api_keys.c.revoked)
                            .order_by(api_keys.c.created)).all()
    out = []
    for r in rows:
        row = dict(r._mapping)
        row["scopes"] = list(SCOPES) if row["scopes"] is None else row["scopes"].split()
        out.append(row)
    return out


def active_keys(database: str | Engine) -> dict[str, ApiKey]:
    """The active keys by hash: what a server checks each request against."""
    with _engine(database).connect() as conn:
        rows = conn.execute(select(api_keys.c.hash, api_keys.c.id, api_keys.c.name,
                                   api_keys.c.scopes, api_keys.c.rate)
                            .where(api_keys.c.revoked.is_(None))).all()
    return {h: ApiKey(i, n, frozenset(SCOPES if s is None else s.split()), r)
            for h, i, n, s, r in rows}
