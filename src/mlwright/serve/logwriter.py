"""The prediction log writer: a bounded queue drained in batches by one database thread.

Requests put one entry each (not one per record) and only wait when the queue is full:
that is the back-pressure that keeps memory bounded when the database is slower than the
traffic. JSON encoding of inputs and outputs happens in the writer thread, off the event
loop. ``close()`` drains everything, so a graceful shutdown (SIGTERM) loses nothing.

When the database cannot be reached (a PostgreSQL restart, a locked SQLite file) the batch
in hand is retried, with a growing pause up to 2 s, for as long as the outage lasts (up to
``outage_s``): meanwhile requests fill the queue, and once it is full they wait for it, so
an answered prediction is never dropped. :attr:`LogWriter.down` says since when writes fail
(``/readyz`` reports it). A write is idempotent (the log's unique record index and ``ON
CONFLICT DO NOTHING``), so a batch whose commit succeeded but whose answer was lost is not
logged twice when it is written again.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.engine import Engine

from mlwright._logging import get_logger
from mlwright.store import copy_new, feedback, insert_new, predictions, unmatched_reasons

__all__ = ["FEEDBACK_COLUMNS", "PREDICTION_COLUMNS", "FeedbackEntry", "LogWriter",
           "PredictionEntry", "encode"]

log = get_logger(__name__)


def encode(value: Any) -> str:
    """``value`` as the log's JSON text (a placeholder when it cannot be written)."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as exc:  # nested deeper than orjson writes (a hostile refused record),
        import json  # or an int beyond 64 bits (a CSV upload's digits), which json writes

        try:
            return json.dumps(value, default=str)
        except (RecursionError, TypeError, ValueError):
            return orjson.dumps({"not_logged": f"{type(value).__name__}: {exc}"}).decode()


PREDICTION_COLUMNS = ("request_id", "row", "ts", "model", "version", "role", "key", "inputs",
                      "prediction", "proba", "latency_ms", "status", "violations")
FEEDBACK_COLUMNS = ("request_id", "row", "key", "label", "ts")


@dataclass(slots=True)
class PredictionEntry:
    """One request (or one arm of it) as the log keeps it: rows are expanded when written."""

    request_id: str
    ts: float
    model: str
    version: str
    role: str
    records: list[Any]
    keys: list[str | None] | None
    predictions: list[Any] | None
    proba: list[list[float]] | None
    latency_ms: float
    status: int
    issues: dict[int, list[dict[str, Any]]] | None = None   # record index -> violations
    first_row: int = 0   # row number of records[0] (a batch upload is logged in chunks)
    encoded: bool = False  # records are JSON text already (a large body's, from its worker)

    def values(self) -> list[tuple[Any, ...]]:
        """One tuple per record, in ``PREDICTION_COLUMNS`` order."""
        issues = self.issues or {}
        keys = self.keys or ()
        predictions, proba, first = self.predictions, self.proba, self.first_row
        encoded = self.encoded
        return [(self.request_id, first + i, self.ts, self.model, self.version, self.role,
                 keys[i] if i < len(keys) else None, record if encoded else encode(record),
                 None if predictions is None else encode(predictions[i]),
                 None if proba is None else encode(proba[i]),
                 self.latency_ms, self.status,
                 encode(issues[i]) if issues.get(i) else None)
                for i, record in enumerate(self.records)]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(PREDICTION_COLUMNS, v, strict=True)) for v in self.values()]


@dataclass(slots=True)
class FeedbackEntry:
    items: list[dict[str, Any]]   # request_id, row, key, label, ts
    #: Set when written: per item, None when it names an answered record, else why not
    #: (:func:`mlwright.store.unmatched_reasons`, checked in the writing transaction, after
    #: the predictions queued before it). None: nobody waits for the answer.
    done: asyncio.Future[list[str | None]] | None = None

    def values(self) -> list[tuple[Any, ...]]:
        """One tuple per item, in ``FEEDBACK_COLUMNS`` order."""
        return [(item.get("request_id"), item.get("row"), item.get("key"),
                 encode(item["label"]), item["ts"]) for item in self.items]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(FEEDBACK_COLUMNS, v, strict=True)) for v in self.values()]


class LogWriter:
    """Writes entries to the log tables in batches of up to ``batch_rows`` rows, at most
    ``flush_interval`` seconds after they arrive."""

    def __init__(self, engine: Engine, *, max_queue: int = 10_000, batch_rows: int = 2_000,
                 flush_interval: float = 0.05, outage_s: float = 600.0,
                 close_outage_s: float = 30.0) -> None:
        self.engine = engine
        self.outage_s = outage_s              # how long a batch is retried while serving
        self.close_outage_s = close_outage_s  # ... and once the server is shutting down
        #: (monotonic time the writes started failing, the last error) while they fail
        self.down: tuple[float, str] | None = None
        self.closing = False
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.batch_rows = batch_rows
        self.written = 0
        self.failed = 0
        self._queue: asyncio.Queue[PredictionEntry | FeedbackEntry | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mlwright-log")
        self._inserts: dict[str, Any] = {}  # table name -> compiled INSERT

    @property
    def depth(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    def start(self) -> None:
        self._queue = asyncio.Queue(self.max_queue)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def put(self, entry: PredictionEntry | FeedbackEntry) -> None:
        """Queue ``entry``; waits while the queue is full (back-pressure)."""
        assert self._queue is not None, "the log writer was not started"
        await self._queue.put(entry)

    async def close(self) -> None:
        """Write everything queued, then stop."""
        if self._queue is None or self._task is None:
            return
        self.closing = True
        await self._queue.put(None)
        await self._task
        self._task = None
        self._thread.shutdown(wait=True)
        log.info("prediction log closed: %d rows written, %d failed", self.written,
                 self.failed)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        closing = False
        while not closing:
            entry = await self._queue.get()
            batch: list[PredictionEntry | FeedbackEntry] = []
            if entry is None:
                closing = True
            else:
                batch.append(entry)
                if self._queue.qsize() < self.batch_rows // 100:
                    # A transaction per request would cost the commit each time, on the
                    # GIL the requests need: let a few more arrive first.
                    await asyncio.sleep(self.flush_interval)
            # Whatever else is queued goes in the same transaction.
            rows = 0
            while not closing and rows < self.batch_rows:
                try:
                    more = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
                rows += len(more.records) if isinstance(more, PredictionEntry) else 1
            if batch:
                matched = await loop.run_in_executor(self._thread, self._write, batch)
                for item in batch:
                    if isinstance(item, FeedbackEntry) and item.done is not None \
                            and not item.done.done():
                        if id(item) in matched:
                            item.done.set_result(matched[id(item)])
                        else:
                            item.done.set_exception(RuntimeError("not written"))

    def _insert(self, conn: Any, table: Table, columns: tuple[str, ...],
                values: list[tuple[Any, ...]]) -> None:
        """Rows inserted through the driver's executemany: SQLAlchemy's per-row parameter
        processing would cost more than the database's own work (~15 of ~30 us a row). On
        PostgreSQL, through COPY (:func:`mlwright.store.copy_new`)."""
        if not values:
            return
        if self.engine.dialect.name == "postgresql":
            copy_new(conn, table, columns, values)
            return
        compiled = self._inserts.get(table.name)
        if compiled is None:
            compiled = insert_new(table, self.engine.dialect.name).compile(
                dialect=self.engine.dialect, column_keys=list(columns))
            self._inserts[table.name] = compiled
        if compiled.positional and tuple(compiled.positiontup or ()) == columns:
            params: list[Any] = values
        else:  # named parameters (psycopg's %(name)s) or another order
            params = [dict(zip(columns, v, strict=True)) for v in values]
            if compiled.positional:
                params = [tuple(p[k] for k in compiled.positiontup or ()) for p in params]
        conn.exec_driver_sql(compiled.string, params)

    def _write(self, batch: list[PredictionEntry | FeedbackEntry]
               ) -> dict[int, list[str | None]]:
        """Write ``batch`` in one transaction; returns the match of each awaited feedback
        entry (by ``id``), empty when the write failed."""
        pred_rows: list[tuple[Any, ...]] = []
        fb_rows: list[tuple[Any, ...]] = []
        for entry in batch:
            try:
                rows = entry.values()
            except Exception:  # one bad entry must not stop the writer (nor lose the rest)
                self.failed += len(entry.records if isinstance(entry, PredictionEntry)
                                   else entry.items)
                log.exception("could not encode a log entry")
                continue
            (pred_rows if isinstance(entry, PredictionEntry) else fb_rows).extend(rows)
        awaited = [e for e in batch if isinstance(e, FeedbackEntry) and e.done is not None]
        attempt = 0
        while True:
            try:
                with self.engine.begin() as conn:
                    self._insert(conn, predictions, PREDICTION_COLUMNS, pred_rows)
                    matched = {id(e): unmatched_reasons(conn, e.items) for e in awaited}
                    self._insert(conn, feedback, FEEDBACK_COLUMNS, fb_rows)
                self.written += len(pred_rows) + len(fb_rows)
                if self.down is not None:
                    log.warning("the project database is back after %.1f s; the buffered "
                                "log entries are written", time.monotonic() - self.down[0])
                    self.down = None
                return matched
            except Exception as exc:
                attempt += 1
                if _unreachable(exc):  # retried for as long as the outage lasts
                    if self.down is None:
                        self.down = (time.monotonic(), _describe(exc))
                        log.warning("the project database cannot be reached (%s); log "
                                    "entries are kept in memory and retried", self.down[1])
                    else:
                        self.down = (self.down[0], _describe(exc))
                    limit = self.close_outage_s if self.closing else self.outage_s
                    give_up = time.monotonic() - self.down[0] > limit
                else:  # a bad row, a missing table: not fixed by waiting
                    give_up = attempt >= 3
                if give_up:
                    self.down = None  # the next batch finds out afresh
                    self.failed += len(pred_rows) + len(fb_rows)
                    log.exception("could not write %d log rows",
                                  len(pred_rows) + len(fb_rows))
                    return {}
                time.sleep(min(2.0, 0.2 * attempt))


def _unreachable(exc: BaseException) -> bool:
    """A database that is down, restarting or locked: waiting fixes it."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _describe(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
