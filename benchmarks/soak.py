"""Soak: mlwright serve under a steady valid stream while a hostile client attacks it, then a
million requests for memory growth, with SIGTERM under load and a prediction-log check.

The full run is one command (about 35 minutes on 2 cores: training ~1, quiet baseline 2,
hostile phase 10, drain and shutdown ~1, memory phase ~15-20 at 800-1,100 req/s, start-ups
and log checks ~1; run it on a quiet machine):

    .venv/bin/python benchmarks/soak.py                 # writes benchmarks/results/soak.json
    .venv/bin/python benchmarks/soak.py --quick         # ~4 min smoke: results/soak-quick.json

``--run RUN_FOLDER`` serves a saved run instead of training one (as benchmarks/serve.py
does); ``--work DIR`` keeps the trained model, the server logs and the log databases.

What it does, on loopback only, against ``mlwright serve churn@champion`` (telco_churn,
trained and registered as benchmarks/serve.py does) in its own process:

1. **Valid stream** (this process; benchmarks/_openloop.py): single-row and 100-row
   requests at fixed rates, open-loop: each request has a scheduled send time and its
   latency is measured from that time, so a stalled server shows up as latency (no
   coordinated omission); keep-alive connections (at most ``--connections``), a client time
   limit per request, every failure counted. It runs through a quiet baseline, the hostile
   phase, a drain and SIGTERM.
2. **Hostile client** (benchmarks/_hostile.py, a process of its own): huge invalid batches
   (100k and 3M empty objects, every field of the wrong type, under the body limit), the
   largest valid batch, a record with ~650k unknown fields, deep nesting, slow bodies, slow
   headers, 500 idle connections, and bursts over its API key's rate limit (when the server
   has per-key limits: then both clients send keys and the server requires them). Each
   attack runs alone for ``--solo-seconds`` (to tell which one hurts; a solo row also pays
   for work the server still does for the attack before it), then all together for the
   rest of ``--minutes``.
3. **SIGTERM under load**: one client time limit after the hostile phase (so each of its
   requests had all of its time), both clients still sending. Every request answered 200
   (or 422 for records breaking the contract) must then be in the prediction log, with one
   row per record.
4. **Memory**: a fresh server answers ``--requests-total`` requests from pipelined
   keep-alive clients (1 in 20 breaks the contract: the error path is exercised too); its
   RSS (/proc/PID/status) after 10,000 requests against after all of them; then SIGTERM
   under load and the same log check.

The server runs on one CPU and the clients on the others (``--no-pin`` to leave placement to
the OS); the generator's lag behind its schedule and each process's CPU use are reported, so
a saturated client shows. Prints tables; writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from _openloop import Pool, Stream, stream_stats, within
from _serving import (
    HOST,
    cpu_seconds,
    descendants_cpu_seconds,
    free_port,
    read_response,
    request_head,
    rss_mb,
    server_env,
    start_mlwright,
    stop,
    train_in_subprocess,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent
PATH = "/v1/predict"
ATTACKS = ("empty_100k", "empty_3m", "wrong_types", "valid_max", "wide_record", "deep",
           "slow_body", "slow_headers", "idle", "burst")
MEMORY_CHECKPOINTS = (10_000, 50_000, 100_000, 250_000, 500_000, 750_000)


# -- the prediction log ----------------------------------------------------------------------

def logged_rows(database: Path) -> Iterable[tuple[str, int]]:
    """(request id, rows) of every request in the prediction log (champion rows)."""
    with sqlite3.connect(database) as conn:
        yield from conn.execute("select request_id, count(*) from predictions "
                                "where role = 'champion' group by request_id")


def log_check(database: Path, expected: dict[str, int]) -> dict[str, Any]:
    """Every answered request (id -> records) is in the log with one row per record."""
    found = {rid: rows for rid, rows in logged_rows(database) if rid in expected}
    missing = [rid for rid in expected if rid not in found]
    short = [rid for rid, rows in found.items() if rows != expected[rid]]
    return {"answered": len(expected), "in_log": len(found), "missing": len(missing),
            "wrong_row_count": len(short), "examples": (missing + short)[:5],
            "complete": not missing and not short}


# -- phase 1-3: quiet, hostile, SIGTERM ------------------------------------------------------

def records_bodies(records: list[dict[str, Any]]) -> tuple[list[bytes], list[bytes]]:
    singles = [orjson.dumps(r) for r in records[:1000]]
    batches = [orjson.dumps(records[s:s + 100]) for s in range(0, len(records) - 100, 97)][:50]
    return singles, batches


def hostile_plan(minutes: float, solo: float, attacks: list[str], tail: float
                 ) -> list[tuple[list[str], float]]:
    total = minutes * 60
    plan = [([name], solo) for name in attacks] if solo else []
    rest = total - solo * len(plan)
    if rest <= 0:
        raise SystemExit(f"--minutes {minutes:g} leaves no time for all attacks together "
                         f"after {len(plan)} solo segments of {solo:g} s")
    return [*plan, (attacks, rest), (attacks, tail)]


async def soak_phase(args: argparse.Namespace, work: Path, process: subprocess.Popen[bytes],
                     port: int, records: list[dict[str, Any]], client_cpus: set[int] | None,
                     keys: dict[str, str] | None) -> dict[str, Any]:
    singles, batches = records_bodies(records)
    # After the hostile phase both clients keep going: for one client time limit (so every
    # valid request of the phase has had all of its time before SIGTERM), then through the
    # shutdown.
    drain = args.timeout
    tail = drain + 15.0
    attacks = [a for a in args.attacks.split(",") if a and (a != "burst" or keys)]
    valid_key = f"X-API-Key: {keys['soak-valid']}\r\n" if keys else ""
    config = work / "hostile.json"
    config.write_bytes(orjson.dumps({
        "port": port, "records": records[:2000], "cpus": sorted(client_cpus or ()),
        "plan": hostile_plan(args.minutes, args.solo_seconds, attacks, tail),
        "options": {"body_limit": args.body_limit, "timeout": args.hostile_timeout,
                    "pause": args.pause, "idle": args.idle, "slow": args.slow,
                    "burst": args.burst,
                    "key_header": f"X-API-Key: {keys['soak-hostile']}\r\n" if keys else ""}}))
    hostile_out = work / "hostile-result.json"
    hostile_out.unlink(missing_ok=True)
    loop = asyncio.get_running_loop()
    hostile = subprocess.Popen([sys.executable, str(ROOT / "_hostile.py"), str(config),
                                str(hostile_out)], cwd=work, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    assert hostile.stdin is not None and hostile.stdout is not None
    if await loop.run_in_executor(None, hostile.stdout.readline) != b"ready\n":
        raise RuntimeError(f"the hostile client did not start (exit {hostile.wait()})")
    pool = Pool(port, args.connections)
    for body in singles[:200] + batches[:20]:  # warm-up, not measured
        await pool.post(request_head(PATH, len(body), valid_key) + body)
    quiet_start = time.monotonic() + 1
    hostile_start = quiet_start + args.baseline_minutes * 60
    hostile_end = hostile_start + args.minutes * 60
    hostile.stdin.write(f"{hostile_start!r}\n".encode())
    hostile.stdin.close()
    until = hostile_end + drain + args.shutdown_wait  # moved once the server is gone
    streams = [Stream("1", args.rate, singles, quiet_start, until, args.timeout, valid_key),
               Stream("100", args.batch_rate, batches, quiet_start, until, args.timeout,
                      valid_key)]
    samples: list[tuple[float, float | None, float | None, float, float | None, float]] = []
    sigterm: dict[str, Any] = {}

    async def sample() -> None:
        while process.poll() is None:
            samples.append((time.monotonic(), rss_mb(process.pid), cpu_seconds(process.pid),
                            time.process_time(), cpu_seconds(hostile.pid),
                            descendants_cpu_seconds(process.pid)))
            await asyncio.sleep(1.0)

    async def shutdown() -> None:
        """SIGTERM at the end of the hostile phase; the streams stop once the server is
        gone (or ``--shutdown-wait`` s later, when it is killed)."""
        await asyncio.sleep(max(0.0, hostile_end + drain - time.monotonic()))
        sigterm["sent_at"] = time.monotonic()
        if process.poll() is None:
            process.terminate()
        while process.poll() is None and time.monotonic() < sigterm["sent_at"] + \
                args.shutdown_wait:
            await asyncio.sleep(0.05)
        sigterm["exit_s"] = round(time.monotonic() - sigterm["sent_at"], 2)
        if process.poll() is None:
            process.kill()
            sigterm["killed"] = True
        sigterm["returncode"] = process.wait()
        for s in streams:
            s.end = min(s.end, time.monotonic())

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(s.run(pool) for s in streams), shutdown())
    pool.close()
    await loop.run_in_executor(None, hostile.wait)
    await sampler
    result = orjson.loads(hostile_out.read_bytes()) if hostile_out.exists() else {
        "segments": [], "attacks": {}, "logged": [], "error": f"exit {hostile.returncode}"}

    # Tag the valid stream by phase and by hostile segment (from the client's own times).
    end = sigterm["sent_at"]
    out: dict[str, Any] = {"quiet": {}, "hostile": {}, "drain": {}, "shutdown": {},
                           "segments": []}
    for s in streams:
        for name, begin, until in (("quiet", quiet_start, hostile_start),
                                   ("hostile", hostile_start, hostile_end),
                                   ("drain", hostile_end, end)):
            out[name][s.name] = stream_stats(within(s.outcomes, begin, until), until - begin)
        # Requests of the drain still open at SIGTERM fail by the shutdown, not the attack.
        out["drain"][s.name]["failed_before_sigterm"] = sum(
            1 for o in within(s.outcomes, hostile_end, end) if o[3] != 200 and o[0] + o[2] < end)
        after = within(s.outcomes, end, float("inf"))
        out["shutdown"][s.name] = {"requests": len(after),
                                   "ok": sum(o[3] == 200 for o in after),
                                   "failures": dict(Counter(o[4] for o in after if o[4]))}
    for segment in result["segments"][:-1]:  # the last one is the tail
        begin, until = segment["start"], min(segment["end"], hostile_end)
        if until - begin < 1:
            continue
        out["segments"].append({
            "attacks": segment["attacks"], "seconds": round(until - begin),
            **{s.name: stream_stats(within(s.outcomes, begin, until), until - begin)
               for s in streams}})
    expected = {o[5]: int(s.name) for s in streams for o in s.outcomes if o[3] == 200}
    expected.update({rid: records for rid, status, records in result["logged"]})
    mismatched = sum(s.mismatched for s in streams)

    def phase(t: float) -> str:
        return ("quiet" if t < hostile_start else "hostile" if t < hostile_end
                else "drain" if t < end else "shutdown")
    rss = [{"t": round(t - quiet_start, 1), "phase": phase(t), "rss_mb": r, "cpu_s": c,
            "workers_cpu_s": round(w, 2), "generator_cpu_s": round(g, 2), "hostile_cpu_s": h}
           for t, r, c, g, h, w in samples if r is not None]
    if not keys and "burst" in args.attacks.split(","):
        result["burst_skipped"] = ("this mlwright has no per-key rate limits "
                                   "('mlwright keys create NAME --rate 100/second' failed)")
    return {"valid": out, "hostile": {k: v for k, v in result.items() if k != "logged"},
            "sigterm": sigterm, "rss": rss, "pool": {"opened": pool.opened,
                                                     "retried": pool.retried},
            "log": {**log_check(work / "soak-log.db", expected),
                    "request_id_mismatches": mismatched}}


def create_keys(work: Path, database: Path, tracking_uri: str, rate: str
                ) -> dict[str, str] | None:
    """Two API keys in the soak server's database: the valid stream's (no rate limit) and
    the hostile client's (``rate``); None when this mlwright has no per-key rate limits."""
    keys = {}
    for name, limit in (("soak-valid", "unlimited"), ("soak-hostile", rate)):
        done = subprocess.run(
            [sys.executable, "-c", "from mlwright.cli import main; main()", "keys", "create",
             name, "--rate", limit, "--database", f"sqlite:///{database}"],
            cwd=work, env=server_env(tracking_uri), capture_output=True, text=True)
        found = re.findall(r"\bmlw_[A-Za-z0-9_-]+", done.stdout)
        if done.returncode or not found:
            return None
        keys[name] = found[-1]
    return keys


# -- phase 4: memory -----------------------------------------------------------------------

async def memory_phase(args: argparse.Namespace, process: subprocess.Popen[bytes], port: int,
                       records: list[dict[str, Any]]) -> dict[str, Any]:
    """``--requests-total`` requests over pipelined keep-alive connections, then SIGTERM
    while ``tail`` more are in flight. Request i carries the id ``m{i}``."""
    total = args.requests_total
    tail = max(2000, args.memory_connections * args.depth * 4)
    singles = [orjson.dumps(r) for r in records[:1000]]
    names = list(records[0])
    invalid = orjson.dumps({**records[0], names[1]: ["not", "a", "value"]})
    status = bytearray(total + tail)   # 0: unanswered, 1: 200, 2: 422, 3: other
    counter = iter(range(total + tail))
    done = [0]
    mismatched = [0]
    checkpoints: list[dict[str, Any]] = []
    sigterm: dict[str, Any] = {}
    pid = process.pid

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        window = asyncio.Semaphore(args.depth)
        sent: asyncio.Queue[int | None] = asyncio.Queue()

        async def send() -> None:
            try:
                for i in counter:
                    await window.acquire()
                    body = invalid if i % 20 == 19 else singles[i % len(singles)]
                    writer.write(request_head(PATH, len(body), f"X-Request-ID: m{i}\r\n")
                                 + body)
                    sent.put_nowait(i)
                    await writer.drain()
            except OSError:
                pass  # the server closed it (SIGTERM): receive() ends too
            finally:
                sent.put_nowait(None)

        async def receive() -> None:
            while (i := await sent.get()) is not None:
                code, headers, _ = await read_response(reader)
                window.release()
                status[i] = 1 if code == 200 else 2 if code == 422 else 3
                if headers.get(b"x-request-id") != b"m%d" % i:
                    mismatched[0] += 1
                done[0] += 1

        sender = asyncio.create_task(send())
        try:
            await receive()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the server closed it (SIGTERM)
        finally:
            sender.cancel()
            writer.close()

    async def watch() -> None:
        marks = [c for c in MEMORY_CHECKPOINTS if c < total] + [total]
        while marks and process.poll() is None:
            if done[0] >= marks[0]:
                checkpoints.append({"requests": done[0], "t": time.monotonic(),
                                    "rss_mb": rss_mb(pid), "server_cpu_s": cpu_seconds(pid),
                                    "client_cpu_s": time.process_time()})
                marks.pop(0)
                if not marks:  # the target: stop the server while the tail is in flight
                    sigterm["sent_at_requests"] = done[0]
                    sigterm["sent_at"] = time.monotonic()
                    process.terminate()
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    clients = asyncio.gather(*(connection() for _ in range(args.memory_connections)))
    await watcher
    if "sent_at" in sigterm:
        while process.poll() is None and \
                time.monotonic() < sigterm["sent_at"] + args.shutdown_wait:
            await asyncio.sleep(0.05)
        sigterm["exit_s"] = round(time.monotonic() - sigterm.pop("sent_at"), 2)
        sigterm["killed"] = process.poll() is None
        if sigterm["killed"]:
            process.kill()
    with contextlib.suppress(TimeoutError):  # connections left open end with the server
        await asyncio.wait_for(clients, 30)
    elapsed = time.monotonic() - started
    answered = Counter(status)
    first, last = (checkpoints[0], checkpoints[-1]) if checkpoints else ({}, {})
    span = (last.get("t", 0) - first.get("t", 0)) or 1
    for c in checkpoints:
        c["t"] = round(c.pop("t") - started, 1)
    return {"requests_total": total, "answered": answered[1] + answered[2],
            "answered_200": answered[1], "answered_422": answered[2], "other": answered[3],
            "unanswered": answered[0], "request_id_mismatches": mismatched[0],
            "seconds": round(elapsed, 1),
            "req_per_s": round((last.get("requests", 0) - first.get("requests", 0)) / span),
            # CPU seconds per second between the first and the last checkpoint: a client
            # near 1.0 would be the bottleneck; the server's near 1.0 is saturated.
            "server_cpu": round(((last.get("server_cpu_s") or 0) -
                                 (first.get("server_cpu_s") or 0)) / span, 2),
            "client_cpu": round((last.get("client_cpu_s", 0) - first.get("client_cpu_s", 0))
                                / span, 2),
            "checkpoints": checkpoints, "sigterm": sigterm, "status": status}


# -- report ----------------------------------------------------------------------------------

def reference() -> dict[str, Any]:
    """serve.json's mlwright serve figures at concurrency 1, for the quiet baseline."""
    path = ROOT / "results" / "serve.json"
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["results"]
    return {str(r["rows"]): {"p50_ms": round(r["p50_ms"], 3), "p99_ms": round(r["p99_ms"], 3)}
            for r in rows if r["system"] == "mlwright serve" and r["concurrency"] == 1}


def verdicts(soak: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any]:
    valid = soak["valid"]
    ratios = {k: (valid["hostile"][k]["p99_ms"] / valid["quiet"][k]["p99_ms"]
                  if valid["hostile"][k]["p99_ms"] and valid["quiet"][k]["p99_ms"] else None)
              for k in valid["quiet"]}
    # The drain: the hostile client is still at it, and the phase's late answers come in.
    failed = sum(v["failed"] for v in valid["hostile"].values()) + sum(
        v["failed_before_sigterm"] for v in valid["drain"].values())
    marks = memory["checkpoints"]
    growth = (marks[-1]["rss_mb"] / marks[0]["rss_mb"] - 1) if len(marks) > 1 and \
        marks[-1]["rss_mb"] and marks[0]["rss_mb"] else None
    return {
        "p99_ratio_hostile_vs_quiet": {k: None if r is None else round(r, 2)
                                       for k, r in ratios.items()},
        "p99_within_3x": all(r is not None and r <= 3 for r in ratios.values()),
        "valid_failures_under_attack": failed,
        "memory_growth": None if growth is None else round(growth, 4),
        "memory_within_10pct": growth is not None and abs(growth) <= 0.10
        and marks[-1]["requests"] >= memory["requests_total"],
        "log_complete_after_soak_and_sigterm": soak["log"]["complete"],
        "log_complete_after_memory_and_sigterm": memory["log"]["complete"],
    }


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    soak = report["soak"]
    table = Table(title="Valid stream (latency from the scheduled send time)",
                  title_justify="left")
    for col in ("phase", "rows", "requests", "failed", "p50 ms", "p99 ms", "max ms",
                "lag p99 ms"):
        table.add_column(col, justify="left" if col == "phase" else "right")

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)
    for rows, ref in report["reference"].items():
        table.add_row("serve.json c=1", rows, "", "", fmt(ref["p50_ms"]), fmt(ref["p99_ms"]),
                      "", "")
    rows_of = [("quiet", soak["valid"]["quiet"]), ("hostile", soak["valid"]["hostile"]),
               ("drain (then SIGTERM)", soak["valid"]["drain"])]
    rows_of += [("+ " + ",".join(s["attacks"]) if len(s["attacks"]) == 1 else "+ all together",
                 {k: s[k] for k in ("1", "100")}) for s in soak["valid"]["segments"]]
    for label, by_rows in rows_of:
        for rows, st in by_rows.items():
            failed = f"{st['failed']}" + (f" {st['failures']}" if st["failed"] else "")
            if st["failed"] and "failed_before_sigterm" in st:
                failed += f", {st['failed_before_sigterm']} before SIGTERM"
            table.add_row(label, rows, str(st["requests"]), failed,
                          fmt(st["p50_ms"]), fmt(st["p99_ms"]), fmt(st["max_ms"]),
                          fmt(st["lag_p99_ms"]))
    console.print(table)
    attacks = Table(title="Hostile client", title_justify="left")
    for col in ("attack", "sent", "MB sent", "outcomes", "median s", "max s"):
        attacks.add_column(col, justify="left" if col in ("attack", "outcomes") else "right")
    for name, a in soak["hostile"].get("attacks", {}).items():
        attacks.add_row(name, str(a["sent"]), fmt(a["mb_sent"]),
                        ", ".join(f"{k}: {v}" for k, v in sorted(a["outcomes"].items())),
                        fmt(a["median_s"]), fmt(a["max_s"]))
    console.print(attacks)
    hostile = soak["hostile"]
    if hostile.get("bursts"):
        bursts = hostile["bursts"]
        console.print(f"Bursts over the hostile key's rate limit "
                      f"({report['settings']['burst_rate']}): {len(bursts)} bursts, answered "
                      f"200 / 429 / other: " + ", ".join(
                          f"{b['ok']}/{b['limited']}/{b['other']} in {b['seconds']:.2f} s"
                          for b in bursts[:6]) + (" …" if len(bursts) > 6 else ""))
    elif hostile.get("burst_skipped"):
        console.print(f"Bursts skipped: {hostile['burst_skipped']}")
    rss = soak["rss"]
    if rss:
        by_phase: dict[str, list[dict[str, Any]]] = {}
        for s in rss:
            by_phase.setdefault(s["phase"], []).append(s)
        console.print("Soak server RSS (MiB): " + "; ".join(
            f"{p} {v[0]['rss_mb']:.0f} -> {v[-1]['rss_mb']:.0f} "
            f"(max {max(x['rss_mb'] for x in v):.0f})" for p, v in by_phase.items()))

        def busy(v: list[dict[str, Any]], key: str) -> str:
            ends = [x[key] for x in (v[0], v[-1])]
            span = v[-1]["t"] - v[0]["t"]
            return "-" if None in ends or span <= 0 else f"{(ends[1] - ends[0]) / span:.2f}"
        console.print("CPU seconds per second (server / its worker processes / valid "
                      "generator / hostile client): " + "; ".join(
                          f"{p} {busy(v, 'cpu_s')} / {busy(v, 'workers_cpu_s')} / "
                          f"{busy(v, 'generator_cpu_s')} / {busy(v, 'hostile_cpu_s')}"
                          for p, v in by_phase.items()))
    mem = report["memory"]
    console.print("Memory phase: " + ", ".join(
        f"{c['requests']:,}: {c['rss_mb']:.0f} MiB" for c in mem["checkpoints"] if c["rss_mb"])
        + f"; {mem['req_per_s']} req/s, server CPU {mem['server_cpu']}, client CPU "
        f"{mem['client_cpu']}")
    console.print(f"SIGTERM: soak server exited in {soak['sigterm'].get('exit_s')} s"
                  f"{' (killed)' if soak['sigterm'].get('killed') else ''}, memory server in "
                  f"{mem['sigterm'].get('exit_s')} s")
    console.print(f"Prediction log: soak {soak['log']}; memory {mem['log']}")
    machine = report["machine"]
    console.print(f"Load average (1, 5, 15 min) at start {machine['load_at_start']}, at end "
                  f"{machine['load_at_end']} on {machine['cpus']} CPUs")
    console.print(f"Done means: {report['verdicts']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="hostile phase")
    parser.add_argument("--baseline-minutes", type=float, default=2.0, help="quiet phase")
    parser.add_argument("--solo-seconds", type=float, default=30.0,
                        help="each attack alone first (0: all together from the start)")
    parser.add_argument("--requests-total", type=int, default=1_000_000,
                        help="memory phase: requests answered before RSS is read again")
    parser.add_argument("--rate", type=float, default=50.0, help="single-row requests/s")
    parser.add_argument("--batch-rate", type=float, default=5.0, help="100-row requests/s")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="client time limit of a valid request, from its scheduled time")
    parser.add_argument("--connections", type=int, default=256,
                        help="most keep-alive connections of the valid stream")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--hostile-timeout", type=float, default=60.0)
    parser.add_argument("--pause", type=float, default=0.5,
                        help="an attack's pause between its requests (s)")
    parser.add_argument("--idle", type=int, default=500, help="idle connections held")
    parser.add_argument("--slow", type=int, default=20,
                        help="connections trickling a body (and as many trickling headers)")
    parser.add_argument("--burst", type=int, default=2000,
                        help="requests per burst over the rate limit (every 10 s)")
    parser.add_argument("--burst-rate", default="100/second",
                        help="the hostile client's API key rate limit")
    parser.add_argument("--memory-connections", type=int, default=32)
    parser.add_argument("--depth", type=int, default=8, help="pipelined requests per connection")
    parser.add_argument("--shutdown-wait", type=float, default=90.0,
                        help="seconds a server may take to stop after SIGTERM before a kill")
    parser.add_argument("--budget", type=float, default=30.0, help="training budget (s)")
    parser.add_argument("--run", type=Path, default=None,
                        help="serve this saved run folder instead of training one")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="server on the last CPU, clients on the others")
    parser.add_argument("--work", type=Path, help="folder kept (a trained model is reused)")
    parser.add_argument("--quick", action="store_true",
                        help="1-minute hostile phase, 20 s baseline, 20,000 requests, 10 s "
                        "client time limit")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:  # its settings, where the command line does not name others
        quick = {"minutes": 1.0, "baseline_minutes": 1 / 3, "solo_seconds": 4.0,
                 "requests_total": 20_000, "budget": 15.0, "timeout": 10.0}
        for name, value in quick.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    out = args.out or ROOT / "results" / ("soak-quick.json" if args.quick else "soak.json")

    work = args.work or Path(tempfile.mkdtemp(prefix="mlwright-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    champion = train_in_subprocess(work, args.budget, args.run)
    records = champion["records"]
    args.body_limit = champion["body_limit"]
    # Everything allocated so far stays out of the collector's way: a full collection over
    # it would show as lag in the schedule.
    gc.collect()
    gc.freeze()
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = {cpus[-1]} if args.pin and len(cpus) > 1 else None
    client_cpus = set(cpus[:-1]) if server_cpus else None
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    run = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        pass
    started = time.monotonic()
    report: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "server_cpus": sorted(server_cpus) if server_cpus else None,
                    # Other work on the machine shows in every figure: 1, 5, 15-minute loads.
                    "load_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "members": champion["members"], "reference": reference()}
    try:
        for name in ("soak", "memory"):
            log_db = work / f"{name}-log.db"
            log_db.unlink(missing_ok=True)
            port = free_port()
            keys = create_keys(work, log_db, champion["tracking_uri"], args.burst_rate) \
                if name == "soak" and "burst" in args.attacks.split(",") else None
            with open(work / f"{name}-server.log", "wb") as log:
                process = start_mlwright(work, champion["tracking_uri"], port, log_db, log,
                                         cpus=server_cpus,
                                         args=("--require-api-key",) if keys else ())
                try:
                    wait_ready(f"http://{HOST}:{port}/readyz", process)
                    print(f"{name} phase on port {port} (pid {process.pid})…", flush=True)
                    if name == "soak":
                        report["soak"] = run(soak_phase(args, work, process, port,
                                                        records, client_cpus, keys))
                    else:
                        mem = run(memory_phase(args, process, port, records))
                        status = mem.pop("status")
                        mem["log"] = memory_log_check(log_db, status)
                        report["memory"] = mem
                finally:
                    stop(process, 10)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report["seconds"] = round(time.monotonic() - started)
    report["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["verdicts"] = verdicts(report["soak"], report["memory"])
    print_report(report)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


def memory_log_check(database: Path, status: bytearray) -> dict[str, Any]:
    """Every request of the memory phase answered 200 or 422 has its one row in the log."""
    seen = bytearray(len(status))
    extra = 0
    for rid, rows in logged_rows(database):
        if rid.startswith("m") and rid[1:].isdigit() and int(rid[1:]) < len(seen):
            seen[int(rid[1:])] = min(rows, 255)
        else:
            extra += 1
    answered = [i for i, s in enumerate(status) if s in (1, 2)]
    missing = [i for i in answered if not seen[i]]
    wrong = [i for i in answered if seen[i] > 1]
    return {"answered": len(answered), "in_log": len(answered) - len(missing),
            "missing": len(missing), "wrong_row_count": len(wrong),
            "examples": [f"m{i}" for i in (missing + wrong)[:5]],
            "complete": not missing and not wrong}


if __name__ == "__main__":
    main()
