"""PostgreSQL store benchmark: log appends through the server's log writer, and the monitor's
window reads as the log grows.

Starts its own PostgreSQL 15 server (Debian's binaries, mlwright.testing.postgres) with
durable settings (fsync, synchronous_commit and full_page_writes on), then:

1. appends ``--append-rows`` records of telco_churn through ``LogWriter._write`` (the
   server's batched, idempotent insert: 1,000-row transactions of 10-record requests), on
   PostgreSQL and, for comparison, on SQLite (the embedded default) on the same disk;
2. grows the log to each of ``--sizes`` records (server-side INSERT ... SELECT of the same
   JSON inputs; 100 records a second of log time, one in 10,000 refused with violations),
   VACUUM ANALYZE (what autovacuum does to an append-only table), and times the monitor's
   reads of a window (``store.window_filter`` + ``monitor.log.read_window``) of 5,000
   records, 100,000 records and one hour (360,000 records, sampled to 100,000), best of
   three, the page cache warm; EXPLAIN (ANALYZE, BUFFERS) of the window's count query says
   how many pages it touched.

    .venv/bin/python benchmarks/pg_store.py                         # 1M and 10M records
    .venv/bin/python benchmarks/pg_store.py --sizes 200000 --append-rows 20000   # quick

Prints a markdown table; writes ``benchmarks/results/pg_store.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "pg_store.json"
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
           "shared_buffers": "512MB", "max_wal_size": "4GB"}
WINDOWS = ("5000", "100000", "1h")


def _records(n: int) -> list[dict[str, Any]]:
    from mlwright.datasets import load_suite

    df = load_suite("telco_churn").drop(columns="churn")
    df = df.astype(object).where(df.notna(), None)
    rows = df.to_dict("records")
    return [rows[i % len(rows)] for i in range(n)]


def _appends(url: str, rows: int) -> dict[str, float]:
    """Rows/s of the server's log writer: 1,000-row transactions of 10-record requests."""
    from mlwright.serve.logwriter import LogWriter, PredictionEntry
    from mlwright.store import get_engine, open_database

    engine = open_database(url)
    writer = LogWriter(engine)
    records = _records(rows)
    entries = [PredictionEntry(f"a{i}", time.time(), "append", "1", "champion",
                               records[i:i + 10], None, ["No"] * 10, [[0.7, 0.3]] * 10, 2.0,
                               200) for i in range(0, rows, 10)]
    started = time.perf_counter()
    for start in range(0, len(entries), 100):
        writer._write(entries[start:start + 100])
    seconds = time.perf_counter() - started
    assert writer.written == rows and writer.failed == 0
    get_engine(url).dispose()
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def _grow(engine: Any, have: int, size: int, inputs: str) -> float:
    """Append records ``have + 1 .. size`` server-side, a million per statement."""
    from sqlalchemy import text

    started = time.perf_counter()
    for low in range(have + 1, size + 1, 1_000_000):
        high = min(size, low + 999_999)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO predictions (request_id, row, ts, model, version, role, key, "
                "inputs, prediction, proba, latency_ms, status, violations) "
                "SELECT md5(i::text), 0, 1.7e9 + i / 100.0, 'm', '1', 'champion', NULL, "
                "replace(:inputs, '\"tenure\": 1,', '\"tenure\": ' || (i % 72) || ','), "
                "'\"No\"', '[0.7, 0.3]', 1 + (i % 50) / 10.0, "
                "CASE WHEN i % 10000 = 0 THEN 422 ELSE 200 END, "
                "CASE WHEN i % 10000 = 0 THEN '[{\"rule\": \"out_of_range\"}]' END "
                "FROM generate_series(:low, :high) AS i"),
                {"inputs": inputs, "low": low, "high": high})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE predictions")
    return time.perf_counter() - started


def _reads(engine: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from mlwright.monitor.log import read_window
    from mlwright.store import parse_window, window_filter

    out: dict[str, Any] = {}
    for window in WINDOWS:
        spec = parse_window(window)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            got = read_window(engine, "m", spec)
            best = min(best, time.perf_counter() - started)
        where = window_filter(engine, "m", spec)
        assert where is not None
        query = select(func.count()).where(*where).compile(
            engine, compile_kwargs={"literal_binds": True})
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {query}").scalars().all()
        buffers = [line.strip() for line in plan if "Buffers:" in line]
        out[window] = {"seconds": round(best, 3), "records": got.n_records,
                       "sampled": len(got.sample), "count_plan": plan,
                       "count_buffers": buffers[0] if buffers else ""}
    return out


def _sizes(engine: Any) -> dict[str, int]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return {"table": int(conn.execute(text(
                    "SELECT pg_table_size('predictions')")).scalar_one()),
                "indexes": int(conn.execute(text(
                    "SELECT pg_indexes_size('predictions')")).scalar_one())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--append-rows", type=int, default=100_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import orjson

    from mlwright.store import open_database
    from mlwright.testing.postgres import PostgresServer

    inputs = orjson.dumps({**_records(1)[0], "tenure": 1}).decode().replace(
        '"tenure":1,', '"tenure": 1,')
    result: dict[str, Any] = {"machine": f"{platform.node()} ({os.cpu_count()} cores, "
                                         f"shared with other work)",
                              "postgresql": "15 (Debian), " + ", ".join(
                                  f"{k}={v}" for k, v in DURABLE.items()),
                              "input_bytes": len(inputs), "sizes": {}}
    with PostgresServer(settings=DURABLE) as server:
        result["appends"] = {"postgresql": _appends(server.create_database("appends"),
                                                    args.append_rows)}
        lite = Path(server.folder) / "appends.db"
        result["appends"]["sqlite"] = _appends(f"sqlite:///{lite}", args.append_rows)
        engine = open_database(server.url)
        have = 0
        for size in sizes:
            fill = _grow(engine, have, size, inputs)
            have = size
            result["sizes"][str(size)] = {"fill_seconds": round(fill, 1), **_sizes(engine),
                                          "reads": _reads(engine)}
            print(f"{size:,} records: filled in {fill:.0f} s", flush=True)
        engine.dispose()

    a = result["appends"]
    print(f"\nAppends through the log writer ({args.append_rows:,} records, 1,000-row "
          f"transactions): PostgreSQL {a['postgresql']['rows_per_s']:,} rows/s, SQLite "
          f"{a['sqlite']['rows_per_s']:,} rows/s\n")
    print("| log records | table + indexes | window | records read | sampled | seconds | "
          "count query's buffers |")
    print("|---:|---:|---|---:|---:|---:|---|")
    for size, entry in result["sizes"].items():
        gb = (entry["table"] + entry["indexes"]) / 1e9
        for window, read in entry["reads"].items():
            print(f"| {int(size):,} | {gb:.2f} GB | {window} | {read['records']:,} | "
                  f"{read['sampled']:,} | {read['seconds']:.3f} | {read['count_buffers']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
