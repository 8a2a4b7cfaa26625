"""The soak benchmark's valid stream (benchmarks/soak.py): requests at a fixed rate,
open-loop. Each request has a scheduled send time and its latency is measured from that time,
so a stalled server shows up as latency even while requests wait for a connection (no
coordinated omission); every failure is counted, never raised."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from _serving import HOST, read_response, request_head

PATH = "/v1/predict"


class Pool:
    """Keep-alive connections, at most ``limit`` at once; a request waits for one (inside
    its own time limit). A connection idle longer than the server keeps it, or closed by it,
    is not reused; a reused one that fails before any answer is retried once on a new one
    (as HTTP clients do)."""

    IDLE_S = 4.0  # uvicorn closes keep-alive connections idle for 5 s

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0
        self.retried = 0

    async def post(self, raw: bytes) -> tuple[int, dict[bytes, bytes]]:
        async with self.slots:
            now = time.monotonic()
            while self.idle:
                reader, writer, since = self.idle.pop()
                if now - since < self.IDLE_S and not reader.at_eof() \
                        and not writer.is_closing():
                    try:
                        return await self._exchange(reader, writer, raw)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        self.retried += 1
                        break
                writer.close()
            self.opened += 1
            reader, writer = await asyncio.open_connection(HOST, self.port)
            return await self._exchange(reader, writer, raw)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        raw: bytes) -> tuple[int, dict[bytes, bytes]]:
        try:
            writer.write(raw)
            status, headers, _ = await read_response(reader)
        except BaseException:
            writer.close()
            raise
        if headers.get(b"connection", b"").lower() == b"close":
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return status, headers

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


@dataclass
class Stream:
    """Requests of one size sent at ``rate`` per second from ``start`` until ``end`` (which
    may be moved while it runs). Outcomes: (scheduled, lag, latency from schedule, status or
    0, error, request id answered)."""

    name: str                      # "1" or "100": rows per request
    rate: float
    bodies: list[bytes]
    start: float
    end: float
    timeout: float
    headers: str = ""              # extra header lines (the API key)
    outcomes: list[tuple[float, float, float, int, str, str]] = field(default_factory=list)
    mismatched: int = 0            # answers whose X-Request-ID is not the request's

    async def run(self, pool: Pool) -> None:
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while True:
            scheduled = self.start + i / self.rate
            if scheduled >= self.end:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                if scheduled >= self.end:  # moved while asleep
                    break
            task = asyncio.create_task(self._one(pool, i, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.gather(*tasks)

    async def _one(self, pool: Pool, i: int, scheduled: float) -> None:
        lag = time.monotonic() - scheduled
        rid = f"v{self.name}-{i}"
        body = self.bodies[i % len(self.bodies)]
        raw = request_head(PATH, len(body), f"X-Request-ID: {rid}\r\n{self.headers}") + body
        status, error, answered = 0, "", ""
        try:
            async with asyncio.timeout(scheduled + self.timeout - time.monotonic()):
                status, headers = await pool.post(raw)
            answered = headers.get(b"x-request-id", b"").decode()
            if answered != rid:
                self.mismatched += 1
            if status != 200:
                error = str(status)
        except TimeoutError:
            error = "timeout"
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            error = type(exc).__name__
        self.outcomes.append((scheduled, lag, time.monotonic() - scheduled, status, error,
                              answered))


def stream_stats(outcomes: list[tuple[float, float, float, int, str, str]],
                 seconds: float) -> dict[str, Any]:
    """Latency from the schedule (a failed request counts as never answered: a percentile
    that falls on one is None), failures by kind, and the generator's lag behind its
    schedule."""
    latency = np.array([o[2] if o[3] == 200 else np.inf for o in outcomes]) * 1000
    lag = np.array([o[1] for o in outcomes]) * 1000
    failures = Counter(o[4] for o in outcomes if o[3] != 200)

    def pct(arr: np.ndarray, q: float) -> float | None:
        if not arr.size:
            return None
        value = float(np.percentile(arr, q, method="inverted_cdf"))
        return round(value, 3) if np.isfinite(value) else None
    return {"requests": len(outcomes), "ok": len(outcomes) - sum(failures.values()),
            "failed": sum(failures.values()), "failures": dict(failures),
            "req_per_s": round(len(outcomes) / seconds, 1),
            "p50_ms": pct(latency, 50), "p99_ms": pct(latency, 99),
            "max_ms": pct(latency, 100), "lag_p50_ms": pct(lag, 50),
            "lag_p99_ms": pct(lag, 99), "lag_max_ms": pct(lag, 100)}


def within(outcomes: Iterable[tuple[float, ...]], start: float, end: float) -> list[Any]:
    return [o for o in outcomes if start <= o[0] < end]
