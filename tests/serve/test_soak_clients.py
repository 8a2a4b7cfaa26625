"""The soak benchmark's clients (benchmarks/_openloop.py and _hostile.py): the valid
stream measures latency from each request's scheduled time, so a stall cannot hide behind a
queued client (coordinated omission); the hostile client is bounded in time, counts every
outcome, and every request a real server answered is then in its prediction log."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.config import ServeConfig
from mlwright.serve import create_app

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[SimpleNamespace]:
    """benchmarks/soak.py and its modules, imported as the script imports them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import _hostile
        import _openloop
        import soak

        yield SimpleNamespace(soak=soak, hostile=_hostile, openloop=_openloop)
        for name in ("soak", "_hostile", "_openloop", "_serving"):
            sys.modules.pop(name, None)


def test_a_stall_shows_in_the_latency_of_every_request_scheduled_during_it(
        bench: SimpleNamespace) -> None:
    # Synthetic server for an exact property: it holds every answer from 0.3 s to 0.8 s.
    # On one connection the requests scheduled meanwhile queue in the client; measured from
    # the schedule, each one still shows the part of the stall it waited through.
    async def main() -> tuple[Any, float, float]:
        hold: dict[str, float] = {}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    found = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                    await reader.readexactly(int(found.group(1)) if found else 0)
                    now = time.monotonic()
                    if hold["from"] <= now < hold["until"]:
                        await asyncio.sleep(hold["until"] - now)
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        start = time.monotonic() + 0.05
        hold.update({"from": start + 0.3, "until": start + 0.8})
        stream = bench.openloop.Stream("1", 100, [b"{}"], start, start + 1.2, timeout=5)
        pool = bench.openloop.Pool(port, 1)
        await stream.run(pool)
        pool.close()
        server.close()
        return stream, hold["from"], hold["until"]

    stream, stall_from, stall_until = asyncio.run(main())
    assert len(stream.outcomes) == 120
    assert all(status == 200 for _, _, _, status, _, _ in stream.outcomes)
    during = [(scheduled, latency) for scheduled, _, latency, *_ in stream.outcomes
              if stall_from <= scheduled < stall_until]
    assert len(during) >= 45
    for scheduled, latency in during:
        assert latency >= stall_until - scheduled - 1e-3, (scheduled - stall_from, latency)
    stats = bench.openloop.stream_stats(stream.outcomes, 1.2)
    assert stats["max_ms"] >= (stall_until - stall_from) * 1000 - 20
    assert stats["failed"] == 0


def test_stream_stats_count_a_failed_request_as_never_answered(bench: SimpleNamespace
                                                              ) -> None:
    ok = [(float(i), 0.0, 0.010, 200, "", f"v1-{i}") for i in range(98)]
    failed = [(98.0, 0.0, 30.0, 0, "timeout", ""), (99.0, 0.0, 0.5, 503, "503", "v1-99")]
    stats = bench.openloop.stream_stats(ok + failed, 100)
    assert stats["failed"] == 2 and stats["failures"] == {"timeout": 1, "503": 1}
    assert stats["p50_ms"] == pytest.approx(10.0)
    assert stats["p99_ms"] is None and stats["max_ms"] is None  # falls on a failure


# slow: trains the fixture's models when run alone, then a few seconds of attacks.
@pytest.mark.slow
def test_hostile_client_is_bounded_and_what_the_server_answered_is_logged(
        bench: SimpleNamespace, run_a: Path, tmp_path: Path, telco_rows: pd.DataFrame) -> None:
    db = tmp_path / "log.db"
    app = create_app(str(run_a), database_url=f"sqlite:///{db}",
                     config=ServeConfig(max_body_mb=1.0))
    hostile = bench.hostile.Hostile(0, records(telco_rows.head(50)), body_limit=2**20,
                                    timeout=3.0, pause=0.1, idle=20, slow=3, trickle=0.2)
    with LiveServer(app) as server:
        hostile.port = server.port
        started = time.monotonic()
        result = asyncio.run(hostile.run([(list(hostile.attacks), 3.0)]))
        elapsed = time.monotonic() - started
    # The server has stopped: its log is flushed.
    assert elapsed < 3.0 + 3.0 + 5.0  # the plan, one client time limit, slack: no hang
    assert set(result["attacks"]) == set(hostile.attacks)
    for name, tally in result["attacks"].items():
        assert tally["sent"] >= 1 and sum(tally["outcomes"].values()) >= 1, (name, tally)
    assert result["max_open_idle"] == 20
    expected = {rid: rows for rid, _, rows in result["logged"]}
    assert expected, result["attacks"]
    check = bench.soak.log_check(db, expected)
    assert check["complete"], check


def test_the_servers_worker_processes_are_counted_in_its_cpu(bench: SimpleNamespace) -> None:
    import subprocess

    from _serving import descendants_cpu_seconds

    # A child that starts a grandchild spinning for half a second of CPU (as the server
    # starts its forkserver, which starts the body worker).
    spin = "import time; t = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    code = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {spin!r}]);"
            f"sys.stdout.write('go\\n'); sys.stdout.flush(); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"go\n"
        deadline = time.monotonic() + 30
        while descendants_cpu_seconds(child.pid) < 0.4:
            assert time.monotonic() < deadline, descendants_cpu_seconds(child.pid)
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
