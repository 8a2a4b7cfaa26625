"""Serving latency and throughput on loopback: mlwright serve vs mlflow models serve vs
BentoML vs in-process predict, for 1-row and 100-row requests at concurrency 1, 8 and 32.

One run trains a telco_churn model (or takes a saved run), registers it in a temporary MLflow
registry, and serves it with ``mlwright serve churn@champion``, ``mlflow models serve -m
models:/churn@champion --env-manager local`` and (``--bentoml``) a BentoML service, one system
at a time in its own processes (started, measured, stopped before the next starts). The same
load generator drives each: raw HTTP/1.1 over keep-alive asyncio connections (no client library
in the measured path), bounded by a request count and a time limit per cell. Prints a table
(and, with BentoML, mlwright's req/s over BentoML's at concurrency 32) and writes
benchmarks/results/serve.json with the load average before and after each system.

BentoML is a peer in a virtual environment of its own, never a dependency of mlwright. Its
service (written into the temporary folder by :func:`_bentoml.service_source`) loads the same
registered version with ``mlflow.pyfunc.load_model`` and predicts JSON records through an
adaptive-batching API (``@bentoml.api(batchable=True)``, one worker like ``mlwright serve``).
The pyfunc unpickles mlwright's classes, so that environment needs mlwright and the model's
libraries at the project's versions::

    python3 -m venv /work/peers/bentoml
    /work/peers/bentoml/bin/pip install bentoml==1.4.40 mlflow==3.17.2 lightgbm==4.7.0 \\
        catboost==1.2.10 xgboost-cpu==3.2.0 scikit-learn==1.9.1 pandas==3.1.1 numpy==2.4.6
    /work/peers/bentoml/bin/pip install .    # mlwright itself, from this checkout

    .venv/bin/python benchmarks/serve.py                 # full run
    .venv/bin/python benchmarks/serve.py --requests 200 --seconds 10   # small
    .venv/bin/python benchmarks/serve.py --run RUN_FOLDER  # serve a saved run (A/B runs)
    .venv/bin/python benchmarks/serve.py --run RUN --skip-mlflow --out /tmp/a.json  # short A/B
    .venv/bin/python benchmarks/serve.py --run RUN --skip-mlflow --serve-args '--max-batch-rows 0' \
        --out /tmp/b.json                                 # ... of a server setting
    .venv/bin/python benchmarks/serve.py --run RUN --bentoml /work/peers/bentoml/bin/python \\
        --out benchmarks/results/serve-bentoml.json       # with BentoML beside mlflow
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from _bentoml import MAX_BATCH_ROWS, MAX_LATENCY_MS, start_bentoml, stop_bentoml
from _bentoml import PATH as BENTO_PATH
from _bentoml import READY as BENTO_READY
from _serving import (
    free_port,
    read_response,
    request_head,
    server_env,
    start_mlwright,
    stop,
    train_champion,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent
LEVELS = (1, 8, 32)
SIZES = (1, 100)
BENTO_SERVICE_NOTE = ("mlflow.pyfunc.load_model of the version; records parsed with MLflow's "
                      "dataframe_from_parsed_json and the input schema; "
                      "@bentoml.api(batchable=True)")


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


def _load() -> list[float]:
    """The 1, 5 and 15-minute load averages (``uptime``): the machine is shared."""
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell")
    parser.add_argument("--seconds", type=float, default=20.0, help="time limit per cell")
    parser.add_argument("--budget", type=float, default=30.0, help="training budget (s)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--bentoml", default=None, metavar="PYTHON",
                        help="python of a virtual environment with bentoml, mlflow and "
                             "mlwright (see the docstring): serve the model with BentoML too")
    parser.add_argument("--run", type=Path, default=None,
                        help="serve this saved run folder instead of training one (the same "
                             "champion in every run: a budget-bound search differs with load)")
    parser.add_argument("--serve-args", default="", metavar="ARGS",
                        help="extra options of 'mlwright serve', e.g. '--max-batch-rows 0' "
                             "(A/B runs of a setting)")
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

    def bentoml_body(rows: int, i: int) -> bytes:
        start = (i * rows) % (len(records) - rows)
        return orjson.dumps({"records": records[start:start + rows]})

    env = server_env(uri)
    serve_args = tuple(args.serve_args.split())

    # Each system: (start it, stop it, path, readiness path, body). Server output goes to
    # files: an unread pipe fills up (mlflow logs every request) and blocks the server.
    def start_mlflow(port: int, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
             "models:/churn@champion", "--env-manager", "local", "-p", str(port),
             "-h", "127.0.0.1"], env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)

    systems: dict[str, tuple[Any, Any, str, str, Any]] = {
        "mlwright serve": (lambda port, log: start_mlwright(work, uri, port, work / "log.db",
                                                            log, args=serve_args),
                           stop, "/v1/predict", "/readyz", mlwright_body)}
    if not args.skip_mlflow:
        systems["mlflow models serve"] = (start_mlflow, stop, "/invocations", "/ping",
                                          mlflow_body)
    if args.bentoml:
        systems["bentoml"] = (
            lambda port, log: start_bentoml(args.bentoml, work, "models:/churn@champion", env,
                                            port, log),
            stop_bentoml, BENTO_PATH, BENTO_READY, bentoml_body)

    results: list[dict[str, Any]] = []
    load: dict[str, dict[str, list[float]]] = {}
    load["in-process"] = {"before": _load()}
    for rows in SIZES:
        for how in ("pandas", "compiled"):
            cell = in_process(loaded, records, rows, args.requests, args.seconds, how)
            results.append({"system": f"in-process ({how})", "rows": rows,
                            "concurrency": 1, **cell})
            print(results[-1], flush=True)
    load["in-process"]["after"] = _load()
    # One system at a time: started, measured, stopped before the next one starts.
    for name, (start, halt, path, ready, body) in systems.items():
        port = free_port()
        with open(work / f"{name.split()[0]}.log", "wb") as log:
            process = start(port, log)
            try:
                wait_ready(f"http://127.0.0.1:{port}{ready}", process)
                # Warm-up, not measured: BentoML's batching dispatcher trains its latency
                # model on its first requests; every server gets the same.
                for rows in SIZES:
                    drive(port, path, body, rows, 4, 200, 10)
                load[name] = {"before": _load()}
                for rows in SIZES:
                    for concurrency in LEVELS:
                        cell = drive(port, path, body, rows, concurrency, args.requests,
                                     args.seconds)
                        results.append({"system": name, "rows": rows,
                                        "concurrency": concurrency, **cell})
                        print(results[-1], flush=True)
                load[name]["after"] = _load()
            finally:
                halt(process)
    ratios = _ratios(results, "bentoml") if args.bentoml else {}

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
    console = Console(width=120)  # a full table also when piped to a file
    console.print(table)
    for key, ratio in ratios.items():
        console.print(f"mlwright serve / BentoML req/s, {key}: {ratio:.2f}x")
    console.print(f"load average (1, 5, 15 min) per system: {load}")
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "settings": {"requests_per_cell": args.requests, "seconds_per_cell": args.seconds,
                     "serve_args": args.serve_args,
                     "train_budget": args.budget, "train_rows": champion.train_rows,
                     "members": loaded.model.describe(),
                     **({"bentoml": _bentoml_settings(args.bentoml)} if args.bentoml else {})},
        "load_average": load,
        "ratios_mlwright_over_bentoml_c32": ratios,
        "results": results}, indent=2))
    print(f"wrote {out}")


def _ratios(results: list[dict[str, Any]], peer: str) -> dict[str, float]:
    """mlwright serve's req/s over ``peer``'s at concurrency 32, per request size."""
    at = {(r["system"], r["rows"]): r["req_per_s"] for r in results if r["concurrency"] == 32}
    return {f"{rows}-row c32": at[("mlwright serve", rows)] / at[(peer, rows)]
            for rows in SIZES if at.get((peer, rows))}


def _bentoml_settings(python: str) -> dict[str, Any]:
    version = subprocess.run([python, "-c", "import bentoml; print(bentoml.__version__)"],
                             capture_output=True, text=True, timeout=120).stdout.strip()
    return {"version": version, "workers": 1, "max_batch_size_rows": MAX_BATCH_ROWS,
            "max_latency_ms": MAX_LATENCY_MS, "service": BENTO_SERVICE_NOTE}


if __name__ == "__main__":
    main()
