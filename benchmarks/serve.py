"""Serving latency and throughput on loopback: mlwright serve vs mlflow models serve vs
in-process predict, for 1-row and 100-row requests at concurrency 1, 8 and 32.

One run trains a telco_churn model, registers it in a temporary MLflow registry, starts
``mlwright serve churn@champion`` and ``mlflow models serve -m models:/churn@champion
--env-manager local`` in their own processes, and drives both with the same load generator:
raw HTTP/1.1 over keep-alive asyncio connections (no client library in the measured path),
bounded by a request count and a time limit per cell. Prints a table and writes
benchmarks/results/serve.json.

    .venv/bin/python benchmarks/serve.py                 # full run
    .venv/bin/python benchmarks/serve.py --requests 200 --seconds 10   # small
    .venv/bin/python benchmarks/serve.py --run RUN_FOLDER  # serve a saved run (A/B runs)
    .venv/bin/python benchmarks/serve.py --run RUN --skip-mlflow --out /tmp/a.json  # short A/B
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from _serving import (
    free_port,
    read_response,
    request_head,
    server_env,
    start_mlwright,
    train_champion,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent
LEVELS = (1, 8, 32)
SIZES = (1, 100)


# A request still unanswered this long after the cell's time limit counts as an error and
# ends its connection (mlflow's server stopped answering some connections at concurrency 32).
GRACE_S = 10.0


async def _client(port: int, path: str, bodies: list[bytes], stop_at: float,
                  latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for body in bodies:
            if time.perf_counter() > stop_at:
                break
            try:
                await asyncio.wait_for(
                    _request(reader, writer, path, body, latencies, errors),
                    timeout=stop_at - time.perf_counter() + GRACE_S)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                errors.append(type(exc).__name__)
                break
    finally:
        writer.close()


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                   body: bytes, latencies: list[float], errors: list[str]) -> None:
    request = request_head(path, len(body))
    started = time.perf_counter()
    writer.write(request + body)
    status, _, _ = await read_response(reader)
    latencies.append(time.perf_counter() - started)
    if status != 200:
        errors.append(str(status))


def drive(port: int, path: str, make_body: Any, rows: int, concurrency: int,
          requests: int, seconds: float) -> dict[str, Any]:
    """``requests`` requests over ``concurrency`` keep-alive connections (or ``seconds``)."""
    per_client = max(1, requests // concurrency)
    bodies = [[make_body(rows, c * per_client + i) for i in range(per_client)]
              for c in range(concurrency)]
    latencies: list[float] = []
    errors: list[str] = []

    async def main() -> float:
        # Warm the connection path first (not measured).
        await _client(port, path, [make_body(rows, 0)] * 3, time.perf_counter() + 30, [], [])
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(_client(port, path, b, stop_at, latencies, errors)
                               for b in bodies))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    return summarize(latencies, elapsed, rows, errors)


def summarize(latencies: list[float], elapsed: float, rows: int,
              errors: list[str] | None = None) -> dict[str, Any]:
    arr = np.asarray(latencies) * 1000
    if arr.size == 0:  # every request failed or timed out
        arr = np.array([np.nan])
    return {"requests": len(latencies), "p50_ms": float(np.percentile(arr, 50)),
            "p95_ms": float(np.percentile(arr, 95)), "p99_ms": float(np.percentile(arr, 99)),
            "req_per_s": len(latencies) / elapsed, "rows_per_s": len(latencies) * rows / elapsed,
            "errors": len(errors or [])}


def in_process(model: Any, records: list[dict[str, Any]], rows: int, requests: int,
               seconds: float, how: str) -> dict[str, Any]:
    import pandas as pd

    from mlwright.search.predictor import compile_predictor
    from mlwright.serve.records import RecordValidator

    if how == "compiled":
        predictor = compile_predictor(model.model, model.contract)
        validator = RecordValidator(model.contract)

        def call(batch: list[dict[str, Any]]) -> None:
            clean, _, _ = validator.validate(batch)
            predictor.predict_records(clean)
    else:
        def call(batch: list[dict[str, Any]]) -> None:
            model.model.predict_proba(pd.DataFrame(batch))
    latencies = []
    started = time.perf_counter()
    for i in range(requests):
        batch = [records[(i * rows + j) % len(records)] for j in range(rows)]
        t0 = time.perf_counter()
        call(batch)
        latencies.append(time.perf_counter() - t0)
        if time.perf_counter() - started > seconds:
            break
    return summarize(latencies, time.perf_counter() - started, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell")
    parser.add_argument("--seconds", type=float, default=20.0, help="time limit per cell")
    parser.add_argument("--budget", type=float, default=30.0, help="training budget (s)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--run", type=Path, default=None,
                        help="serve this saved run folder instead of training one (the same "
                             "champion in every run: a budget-bound search differs with load)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "serve.json",
                        help="where the JSON goes (short A/B runs: elsewhere)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlwright-bench-serve-"))
    champion = train_champion(work, args.budget, run=args.run)
    uri, loaded, records = champion.tracking_uri, champion.loaded, champion.records

    def mlwright_body(rows: int, i: int) -> bytes:
        start = (i * rows) % (len(records) - rows)
        return orjson.dumps(records[start] if rows == 1 else records[start:start + rows])

    def mlflow_body(rows: int, i: int) -> bytes:
        start = (i * rows) % (len(records) - rows)
        return orjson.dumps({"dataframe_records": records[start:start + rows]})

    env = server_env(uri)
    servers = {}
    # Server output goes to files: an unread pipe fills up (mlflow logs every request) and
    # blocks the server mid-benchmark.
    logs = {name: open(work / f"{name}.log", "wb")  # noqa: SIM115 - closed below
            for name in ("mlwright", "mlflow")}
    port = free_port()
    servers["mlwright serve"] = (
        start_mlwright(work, uri, port, work / "log.db", logs["mlwright"]),
        port, "/v1/predict", "/readyz", mlwright_body)
    if not args.skip_mlflow:
        port = free_port()
        servers["mlflow models serve"] = (subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
             "models:/churn@champion", "--env-manager", "local", "-p", str(port),
             "-h", "127.0.0.1"], env=env, cwd=work, stdout=logs["mlflow"],
            stderr=subprocess.STDOUT), port, "/invocations", "/ping", mlflow_body)
    results: list[dict[str, Any]] = []
    try:
        for process, port, _, ready, _ in servers.values():
            wait_ready(f"http://127.0.0.1:{port}{ready}", process)
        for rows in SIZES:
            for how in ("pandas", "compiled"):
                cell = in_process(loaded, records, rows, args.requests, args.seconds, how)
                results.append({"system": f"in-process ({how})", "rows": rows,
                                "concurrency": 1, **cell})
                print(results[-1], flush=True)
            for name, (_, port, path, _, body) in servers.items():
                for concurrency in LEVELS:
                    cell = drive(port, path, body, rows, concurrency, args.requests,
                                 args.seconds)
                    results.append({"system": name, "rows": rows,
                                    "concurrency": concurrency, **cell})
                    print(results[-1], flush=True)
    finally:
        for process, *_ in servers.values():
            process.send_signal(signal.SIGTERM)
        for process, *_ in servers.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        for log_file in logs.values():
            log_file.close()

    from rich.console import Console
    from rich.table import Table

    table = Table(title="Serving on loopback (telco_churn champion)", title_justify="left")
    for col in ("system", "rows", "conc.", "p50 ms", "p95 ms", "p99 ms", "req/s", "rows/s",
                "errors"):
        table.add_column(col, justify="left" if col == "system" else "right")
    for r in results:
        table.add_row(r["system"], str(r["rows"]), str(r["concurrency"]), f"{r['p50_ms']:.2f}",
                      f"{r['p95_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['req_per_s']:.0f}",
                      f"{r['rows_per_s']:.0f}", str(r["errors"]))
    Console().print(table)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "settings": {"requests_per_cell": args.requests, "seconds_per_cell": args.seconds,
                     "train_budget": args.budget, "train_rows": champion.train_rows,
                     "members": loaded.model.describe()},
        "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
