"""Large JSON request bodies parsed and checked in a worker process, not in the server's.

Parsing a 10 MB body (orjson), counting its containers and validating its records are long
calls that hold the interpreter lock: a thread does not help, every other request waits
(the soak measured the valid stream's p99 at 47x its quiet level under such bodies). A
body of ``LARGE_BODY`` bytes or more goes whole to one worker process, which answers with
the clean records, the issues and, for a refused request, its records already encoded
for the prediction log; the server process only receives the body and hands it over.
The operating system then shares the CPU between the two processes, the worker at a lower
priority: where both want it, the event loop gets it first.

The worker is forked from a ``forkserver`` (started once per server process, with
``mlwright.serve.bodies`` imported): no inherited sockets or threads, and a start in
milliseconds after the first. One body at a time, as the validation thread did before; a
request stopped by its time limit drops its queued body.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import orjson

from mlwright._logging import get_logger
from mlwright.data.contract import Contract
from mlwright.serve.logwriter import encode
from mlwright.serve.records import Errors, Issue, RecordValidator

__all__ = ["LARGE_BODY", "WORKER_NICE", "BadRequest", "BodyWorker", "Checked", "check_body",
           "count_containers", "parse_json", "records_of", "sticky_value", "too_many"]

log = get_logger(__name__)

# From this size on, a predict body is parsed and checked in the worker process: below it,
# parsing costs less than the hop (a few ms at most), and the record count rule of
# routes/predict.py sends the validation of many small records to a thread.
LARGE_BODY = 256 * 1024


class BadRequest(Exception):
    """Bad input found by a handler: answered with ``status`` and a JSON error body."""

    def __init__(self, status: int, detail: str, errors: list[Issue] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


# A JSON string (escapes included): removed before counting braces, which it may hold.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def count_containers(body: bytes, at_most: int) -> int:
    """The JSON objects and arrays of ``body``, counted without parsing it; any count up to
    ``at_most`` may include braces inside strings (only a count over it is made exact)."""
    quick = body.count(b"{") + body.count(b"[")
    if quick <= at_most:
        return quick
    bare = _JSON_STRING.sub(b"", body)
    return bare.count(b"{") + bare.count(b"[")


def parse_json(body: bytes, *, max_records: int | None = None, max_containers: int = 0) -> Any:
    """A request's JSON body. With ``max_records``, a body of more than ``max_containers``
    objects and arrays is refused (413) before parsing: parsing millions of tiny objects
    holds the interpreter for a second, whatever thread does it."""
    if not body:
        raise BadRequest(400, "The request body is empty; expected JSON.")
    if max_records is not None and len(body) > 2 * max_containers:  # "{}" is 2 bytes
        found = count_containers(body, max_containers)
        if found > max_containers:
            raise BadRequest(413, (
                f"The request holds {found:,} JSON objects and arrays, more than the "
                f"{max_containers:,} of a request within the limit of {max_records:,} "
                f"records (serve.max_records: one object per record, values not nested). "
                f"Send at most {max_records:,} records per request, or upload a table to "
                f"/v1/predict/batch."))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"The request body is not valid JSON: {exc}.") from None


def too_many(records: int, limit: int) -> BadRequest:
    return BadRequest(413, f"The request holds {records:,} records; the limit is {limit:,} "
                      f"per request (serve.max_records). Send them in requests of at most "
                      f"{limit:,} records, or upload a table to /v1/predict/batch.")


def records_of(payload: Any, features: list[str], limit: int
               ) -> tuple[list[Any], list[str | None] | None]:
    """The records of a predict body (a record, a list, ``{"records": [...]}`` or
    ``{"columns": {...}}``) and the caller's keys if given; at most ``limit`` records."""
    keys: Any = None
    if isinstance(payload, list):
        records = payload
    elif isinstance(payload, dict) and "records" in payload and "records" not in features:
        records, keys = payload["records"], payload.get("keys")
        if not isinstance(records, list):
            raise BadRequest(422, "'records' must be a list of JSON objects.")
    elif isinstance(payload, dict) and "columns" in payload and "columns" not in features:
        columns, keys = payload["columns"], payload.get("keys")
        if not isinstance(columns, dict) or not all(
                isinstance(v, list) for v in columns.values()):
            raise BadRequest(422, "'columns' must be an object of field: [values].")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise BadRequest(422, f"Every list in 'columns' must have the same length; "
                             f"got lengths {sorted(lengths)}.")
        if lengths and max(lengths) > limit:
            raise too_many(max(lengths), limit)
        names = list(columns)
        records = [dict(zip(names, values, strict=True))
                   for values in zip(*columns.values(), strict=True)]
    elif isinstance(payload, dict):
        records = [payload]
    else:
        raise BadRequest(422, f"Expected a JSON object (a record), a list of records, "
                         f"{{\"records\": [...]}} or {{\"columns\": {{...}}}}; got "
                         f"{type(payload).__name__}.")
    if not records:
        raise BadRequest(422, "The request holds no records.")
    if len(records) > limit:
        raise too_many(len(records), limit)
    if keys is not None:
        if not isinstance(keys, list) or len(keys) != len(records) or not all(
                isinstance(k, str | int) and not isinstance(k, bool) for k in keys):
            raise BadRequest(422, f"'keys' must be a list of {len(records)} strings, one "
                             f"per record.")
        keys = [str(k)[:200] for k in keys]
    return records, keys


@dataclass(slots=True)
class Checked:
    """A predict body parsed and validated: what the route needs to answer and log it."""

    records: int                       # how many records the body held
    keys: list[str | None] | None
    clean: list[dict[str, Any]]
    warnings: list[Issue]
    errors: Errors
    refused: list[str] | None = None   # with errors: every record as prediction-log JSON
    sticky: Any = None                 # serve.sticky_key's value in the first record


def sticky_value(records: list[Any], field: str | None) -> Any:
    """The value of ``field`` (serve.sticky_key) in the first record, None when absent."""
    first = records[0] if field and records and isinstance(records[0], dict) else None
    return None if first is None else first.get(field)


def check_body(validator: RecordValidator, limit: int, body: bytes,
               sticky: str | None = None) -> Checked:
    """Parse, split and validate a predict body (raises :class:`BadRequest`)."""
    payload = parse_json(body, max_records=limit,
                         max_containers=limit + len(validator.names) + 16)
    records, keys = records_of(payload, validator.names, limit)
    clean, warnings, errors = validator.validate(records)
    # Raw records may nest deeper than pickle goes: they cross as the log's own JSON text.
    refused = [encode(r) for r in records] if errors else None
    return Checked(len(records), keys, clean, warnings, errors, refused,
                   sticky_value(records, sticky))


# -- the worker process ----------------------------------------------------------------------

_validator: RecordValidator | None = None
_limit = 0
_sticky: str | None = None


# The worker's priority below the server's (a nice value, Unix): where both want the CPU,
# the event loop gets it first, and a stream of large bodies takes what is left (in the soak,
# with the worker at the server's priority, the valid stream's p99 was 18x quiet).
WORKER_NICE = 10


def _start(contract: Contract, limit: int, sticky: str | None) -> None:
    global _validator, _limit, _sticky
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICE)
    _validator, _limit, _sticky = RecordValidator(contract), limit, sticky


def _ready() -> bool:
    return _validator is not None


def _check(body: bytes) -> Checked | tuple[int, str]:
    assert _validator is not None
    try:
        return check_body(_validator, _limit, body, _sticky)
    except BadRequest as exc:  # its __init__ takes two arguments: it would not unpickle
        return exc.status, exc.detail


class BodyWorker:
    """The worker process of one server (``ServerState.bodies``)."""

    def __init__(self, contract: Contract, limit: int, sticky: str | None = None) -> None:
        self.contract = contract
        self.limit = limit
        self.sticky = sticky
        self._pool: ProcessPoolExecutor | None = None

    def _open(self) -> ProcessPoolExecutor:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            context.set_forkserver_preload([__name__])
        return ProcessPoolExecutor(1, mp_context=context, initializer=_start,
                                   initargs=(self.contract, self.limit, self.sticky))

    async def start(self) -> None:
        """Start the worker and wait until it answers (the first body is not kept
        waiting for a process start)."""
        self._pool = self._open()
        await asyncio.get_running_loop().run_in_executor(self._pool, _ready)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def check(self, body: bytes) -> Checked:
        """:func:`check_body` in the worker; :class:`BadRequest` for a refused body, or 503
        when the worker died on it (a new one is started for the next body)."""
        if self._pool is None:
            self._pool = self._open()
        pool = self._pool
        try:
            out = await asyncio.get_running_loop().run_in_executor(pool, _check, body)
        except BrokenProcessPool:
            log.exception("the body worker process died; starting another")
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise BadRequest(503, "The request body could not be checked: the worker "
                             "process that parses large bodies stopped (see the server "
                             "log). Retry the request.") from None
        if isinstance(out, tuple):
            raise BadRequest(*out)
        return out
