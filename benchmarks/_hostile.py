"""The hostile client of benchmarks/soak.py: the worst requests we could construct against
``POST /v1/predict``, each attack bounded in count (one request in flight, or a fixed number
of connections) and in time (the segments of a plan), on loopback only.

Run by soak.py in a process of its own (so its work never delays the valid stream's
schedule): ``python _hostile.py CONFIG.json OUT.json``; it prints ``ready`` once its bodies
are built and starts at the ``time.monotonic()`` instant read from stdin. Every outcome is
counted, never raised: a stalled server gives timeouts, a closed one connection errors.
Requests carry an ``X-Request-ID`` (``x-ATTACK-N``); those answered 200, or 422 for records
that break the contract, are listed with their record counts for the prediction-log check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from _serving import HOST, read_response, request_head

PATH = "/v1/predict"


@dataclass
class Tally:
    """What one attack sent and got back."""

    sent: int = 0
    bytes_sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "200", "413", "timeout", ...
    seconds: list[float] = field(default_factory=list)       # answer (or hold) times
    logged: list[tuple[str, int, int]] = field(default_factory=list)  # id, status, records
    note: str = ""

    def summary(self) -> dict[str, Any]:
        times = sorted(self.seconds)
        return {"sent": self.sent, "mb_sent": round(self.bytes_sent / 2**20, 1),
                "outcomes": dict(self.outcomes),
                "median_s": times[len(times) // 2] if times else None,
                "max_s": times[-1] if times else None, "note": self.note}


@dataclass
class Bodies:
    """The attack bodies, built once."""

    items: dict[str, tuple[bytes, int]]   # name -> (body, records in it)


def build_bodies(records: list[dict[str, Any]], body_limit: int) -> Bodies:
    """Bodies under ``body_limit`` (the server's serve.max_body_mb in bytes)."""
    room = int(body_limit * 0.95)
    names = list(records[0])
    out: dict[str, tuple[bytes, int]] = {
        # The cases: every record breaks the contract (all fields missing).
        "empty_100k": (b"[" + b",".join([b"{}"] * 100_000) + b"]", 100_000),
        "empty_3m": (b"[" + b",".join([b"{}"] * 3_000_000) + b"]", 3_000_000),
        # Past orjson's nesting limit (refused by the parser) ...
        "deep_parser": (b"[" * 200_000 + b"]" * 200_000, 0),
    }
    # ... and just inside it: one field of each record is a list nested ~1,000 deep, which
    # reaches the validator (and any repr() of it in a message).
    deep_value = b"[" * 1000 + b"]" * 1000
    deep_record = orjson.dumps({**records[0], names[0]: None}).replace(
        b"null", deep_value, 1)
    out["deep_record"] = (deep_record, 1)
    n_deep = max(1, room // 4 // len(deep_record))
    out["deep_fields"] = (b"[" + b",".join([deep_record] * n_deep) + b"]", n_deep)
    # Every field of every record has the wrong type (a list): the most errors per byte.
    wrong = orjson.dumps({name: [] for name in names})
    n_wrong = room // (len(wrong) + 1)
    out["wrong_types"] = (b"[" + b",".join([wrong] * n_wrong) + b"]", n_wrong)
    # Valid records, as many as fit: the most model work per request.
    parts, size = [], 2
    for i in range(10**7):
        part = orjson.dumps(records[i % len(records)])
        if size + len(part) + 1 > room:
            break
        parts.append(part)
        size += len(part) + 1
    out["valid_max"] = (b"[" + b",".join(parts) + b"]", len(parts))
    # One valid record with as many unknown fields as fit (each one an extra_field warning).
    head = orjson.dumps(records[0])[:-1]
    n_extra = (room - len(head)) // len(b',"z0000000000":0')
    extra = b",".join(b'"z%010d":0' % k for k in range(n_extra))
    out["wide_record"] = (head + b"," + extra + b"}", 1)
    return Bodies(out)


class Hostile:
    """Runs a plan: ``[(attack names, seconds), ...]`` one segment after another."""

    def __init__(self, port: int, records: list[dict[str, Any]], *, body_limit: int,
                 timeout: float = 60.0, pause: float = 0.5, idle: int = 500, slow: int = 20,
                 trickle: float = 1.0, burst: int = 0, burst_every: float = 10.0,
                 key_header: str = "") -> None:
        self.port = port
        self.records = records
        self.bodies = build_bodies(records, body_limit)
        self.timeout = timeout
        self.pause = pause
        self.idle = idle
        self.slow = slow
        self.trickle = trickle
        self.burst = burst
        self.burst_every = burst_every
        self.key_header = key_header
        self.tallies: dict[str, Tally] = {}
        self.segments: list[dict[str, Any]] = []
        self.open_idle = 0
        self.max_open_idle = 0
        self.bursts: list[dict[str, Any]] = []

    @property
    def attacks(self) -> dict[str, Callable[[Tally], Awaitable[None]]]:
        out: dict[str, Callable[[Tally], Awaitable[None]]] = {
            name: self._sender(name) for name in self.bodies.items}
        out["deep"] = self._deep
        for name in self.DEEP:
            out.pop(name)
        out.update(slow_body=self._slow_body, slow_headers=self._slow_headers,
                   idle=self._idle)
        if self.burst and self.key_header:
            out["burst"] = self._burst
        return out

    def tally(self, name: str) -> Tally:
        return self.tallies.setdefault(name, Tally())

    async def run(self, plan: list[tuple[list[str], float]], start: float | None = None
                  ) -> dict[str, Any]:
        """Run each segment's attacks together for its seconds (from ``start``, a
        ``time.monotonic()`` instant, when given)."""
        if start is not None:
            await asyncio.sleep(max(0.0, start - time.monotonic()))
        attacks = self.attacks
        for names, seconds in plan:
            chosen = list(attacks) if names == ["all"] else [n for n in names if n in attacks]
            began = time.monotonic()
            tasks = [asyncio.create_task(attacks[n](self.tally(n))) for n in chosen]
            await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))
            for task in tasks:
                task.cancel()
            for task in tasks:  # each closes its connections on the way out
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.segments.append({"attacks": chosen, "start": began, "end": time.monotonic()})
        return self.result()

    def result(self) -> dict[str, Any]:
        return {"segments": self.segments, "max_open_idle": self.max_open_idle,
                "bursts": self.bursts,
                "attacks": {n: t.summary() for n, t in self.tallies.items()},
                "logged": [row for t in self.tallies.values() for row in t.logged],
                "sizes": {n: {"bytes": len(b), "records": r}
                          for n, (b, r) in self.bodies.items.items()}}

    # -- requests that are answered ------------------------------------------------------

    async def _post(self, tally: Tally, rid: str, body: bytes, records: int) -> None:
        """One request on a new connection, answered within ``timeout`` or counted."""
        tally.sent += 1
        started = time.monotonic()
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(HOST, self.port)
                writer.write(request_head(PATH, len(body), f"X-Request-ID: {rid}\r\n"
                                          f"{self.key_header}"))
                writer.write(body)
                tally.bytes_sent += len(body)
                status, _, answer = await read_response(reader)
        except TimeoutError:
            tally.outcomes["timeout"] += 1
            return
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.outcomes[type(exc).__name__] += 1
            return
        except asyncio.CancelledError:  # its segment ended first
            tally.outcomes["unfinished"] += 1
            raise
        finally:
            if writer is not None:
                writer.close()
        tally.seconds.append(time.monotonic() - started)
        tally.outcomes[str(status)] += 1
        if status == 200 or (status == 422 and b'"errors"' in answer):
            tally.logged.append((rid, status, records))

    def _sender(self, name: str) -> Callable[[Tally], Awaitable[None]]:
        body, records = self.bodies.items[name]

        async def send(tally: Tally) -> None:
            while True:
                await self._post(tally, f"x-{name}-{tally.sent}", body, records)
                await asyncio.sleep(self.pause)
        return send

    DEEP = ("deep_parser", "deep_record", "deep_fields")

    async def _deep(self, tally: Tally) -> None:
        """The three deep bodies in turn."""
        while True:
            body, records = self.bodies.items[self.DEEP[tally.sent % len(self.DEEP)]]
            await self._post(tally, f"x-deep-{tally.sent}", body, records)
            await asyncio.sleep(self.pause)

    # -- connections held open -------------------------------------------------------------

    async def _hold(self, tally: Tally, first: bytes, then: bytes) -> None:
        """Send ``first``, then ``then`` a byte every ``trickle`` s, until the server
        answers or closes; again on a new connection, until cancelled."""
        while True:
            tally.sent += 1
            started = time.monotonic()
            writer = None
            try:
                reader, writer = await asyncio.open_connection(HOST, self.port)
                writer.write(first)
                answer = asyncio.ensure_future(read_response(reader))
                try:
                    for byte in then:
                        done, _ = await asyncio.wait([answer], timeout=self.trickle)
                        if done:
                            break
                        writer.write(bytes([byte]))
                        await writer.drain()
                    status, _, _ = await answer
                    tally.outcomes[str(status)] += 1
                finally:
                    answer.cancel()
                    if answer.done() and not answer.cancelled():
                        answer.exception()  # retrieved: raised above or not needed
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.outcomes[type(exc).__name__] += 1
            except asyncio.CancelledError:
                tally.outcomes["held_to_the_end"] += 1
                raise
            finally:
                if writer is not None:
                    writer.close()
            tally.seconds.append(time.monotonic() - started)
            await asyncio.sleep(self.pause)

    async def _slow_body(self, tally: Tally) -> None:
        body = orjson.dumps(self.records[0])
        head = request_head(PATH, len(body), self.key_header)
        await asyncio.gather(*(self._hold(tally, head, body) for _ in range(self.slow)))

    async def _slow_headers(self, tally: Tally) -> None:
        first = f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\n".encode()
        await asyncio.gather(*(self._hold(tally, first, b"X-Slow: " + b"a" * 10_000)
                               for _ in range(self.slow)))

    async def _idle(self, tally: Tally) -> None:
        """``idle`` connections that never send a byte; one closed by the server is opened
        again, so the count stays up."""
        tally.note = f"{self.idle} connections"

        async def one(k: int) -> None:
            # Opened 100 a second (a storm of connects would load this client's CPU, which
            # the valid stream's generator shares), then again 2 s after the server closes it.
            await asyncio.sleep(k / 100)
            while True:
                tally.sent += 1
                started = time.monotonic()
                writer = None
                try:
                    reader, writer = await asyncio.open_connection(HOST, self.port)
                    self.open_idle += 1
                    self.max_open_idle = max(self.max_open_idle, self.open_idle)
                    try:
                        await reader.read(1)  # returns once the server closes it
                    finally:
                        self.open_idle -= 1
                    tally.outcomes["closed_by_server"] += 1
                    tally.seconds.append(time.monotonic() - started)
                except OSError as exc:
                    tally.outcomes[type(exc).__name__] += 1
                except asyncio.CancelledError:
                    tally.outcomes["held_to_the_end"] += 1
                    raise
                finally:
                    if writer is not None:
                        writer.close()
                await asyncio.sleep(2.0)
        await asyncio.gather(*(one(k) for k in range(self.idle)))

    # -- over the rate limit ---------------------------------------------------------------

    async def _burst(self, tally: Tally) -> None:
        """Every ``burst_every`` s, ``burst`` single-record requests pipelined on 8
        connections with a rate-limited key, as fast as the server reads them."""
        body = orjson.dumps(self.records[0])
        tally.note = f"{self.burst} requests every {self.burst_every:g} s"
        while True:
            began = time.monotonic()
            before = Counter(tally.outcomes)
            per = -(-self.burst // 8)
            try:
                await asyncio.gather(*(self._pipeline(tally, body, c, per) for c in range(8)))
            finally:  # a burst cut off by the end of its segment is listed too
                got = tally.outcomes - before
                self.bursts.append({
                    "seconds": round(time.monotonic() - began, 3), "ok": got["200"],
                    "limited": got["429"], "other": sum(got.values()) - got["200"] - got["429"]})
            await asyncio.sleep(max(0.0, began + self.burst_every - time.monotonic()))

    async def _pipeline(self, tally: Tally, body: bytes, conn: int, n: int) -> None:
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(HOST, self.port)
                base = tally.sent
                tally.sent += n
                writer.write(b"".join(
                    request_head(PATH, len(body), f"X-Request-ID: x-burst-{base + i}\r\n"
                                 f"{self.key_header}") + body for i in range(n)))
                tally.bytes_sent += n * len(body)
                for i in range(n):
                    status, headers, _ = await read_response(reader)
                    tally.outcomes[str(status)] += 1
                    if status == 200:
                        tally.logged.append((f"x-burst-{base + i}", 200, 1))
                    if headers.get(b"connection", b"").lower() == b"close":
                        break
        except TimeoutError:
            tally.outcomes["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.outcomes[type(exc).__name__] += 1
        except asyncio.CancelledError:
            tally.outcomes["unfinished"] += 1
            raise
        finally:
            if writer is not None:
                writer.close()


def main() -> None:
    with open(sys.argv[1], "rb") as given:
        config = json.loads(given.read())
    if config.get("cpus"):
        os.sched_setaffinity(0, config["cpus"])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the idle connections
    hostile = Hostile(config["port"], config["records"], **config["options"])
    plan = [(names, seconds) for names, seconds in config["plan"]]
    # Bodies built: say so, and start at the time.monotonic() instant soak.py answers.
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    result = asyncio.run(hostile.run(plan, start=start))
    with open(sys.argv[2], "wb") as out:
        out.write(orjson.dumps(result))


if __name__ == "__main__":
    main()
