"""The loop's own small table in the project database (``loop_state``): trigger state and
pending requests.

One JSON value per key (``schedule.last``, ``new_data.files``, ``webhook.pending``...), so
``mlwright run --once`` from cron remembers what it saw last time, and a webhook received by
the server is seen by a loop running in another process.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from mlwright.store import loop_state, open_database

__all__ = ["StateStore"]


class StateStore:
    """Key -> JSON value, shared by every process that uses the project database."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.engine: Engine = open_database(database_url)

    def get(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(loop_state.c.value).where(loop_state.c.key == key)).first()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        text = json.dumps(value, default=str)
        with self.engine.begin() as conn:
            # Delete + insert is portable (no dialect-specific upsert) and atomic in one txn.
            conn.execute(delete(loop_state).where(loop_state.c.key == key))
            conn.execute(loop_state.insert().values(key=key, value=text, ts=time.time()))

    def pop(self, key: str, default: Any = None) -> Any:
        with self.engine.begin() as conn:
            row = conn.execute(select(loop_state.c.value).where(loop_state.c.key == key)).first()
            if row is None:
                return default
            conn.execute(delete(loop_state).where(loop_state.c.key == key))
        return json.loads(row[0])
