"""Monitoring benchmark: drift, quality, service and performance over a 1M-record log.

Builds once (cached under /tmp/mlwright-bench-monitor) a SQLite prediction log of N records
resampled from telco_churn and scored by a real model trained on 70% of it (inputs,
predicted label, probabilities, as the server logs them; 20% of records get feedback), then
times ``run_monitor`` on windows of every record, of 5000 records and of one day, then
``mlwright monitor`` on every record as a user runs it: a new process (imports, report and
all), with the page cache dropped first where the machine lets us (root on Linux).

    .venv/bin/python benchmarks/monitor.py                   # 1,000,000 records
    .venv/bin/python benchmarks/monitor.py --rows 100000     # smaller

Prints a markdown table; writes ``benchmarks/results/monitor.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

RESULTS = Path(__file__).resolve().parent / "results" / "monitor.json"
CACHE = Path("/tmp/mlwright-bench-monitor")
DAYS = 10  # the log spans this many days


def _run_folder() -> Path:
    import mlwright as mw
    from mlwright.datasets import load_suite

    folder = CACHE / "run"
    if (folder / "model.joblib").exists():
        return folder
    df = load_suite("telco_churn")
    train = df.sample(frac=0.7, random_state=0)
    mw.train(train, "churn", time_budget=60, n_trials=3, families=["lightgbm", "linear"],
             seed=0).save(folder)
    return folder


def _build_log(rows: int, folder: Path) -> str:
    from mlwright.datasets import load_suite
    from mlwright.registry.model import LoadedModel
    from mlwright.store import open_database

    path = CACHE / f"log-{rows}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        return url
    loaded = LoadedModel.from_folder(folder)
    df = load_suite("telco_churn")
    features = loaded.contract.feature_names
    X = df[features]
    proba = loaded.model.predict_proba(X)
    labels = loaded.model.classes_[proba.argmax(axis=1)]
    # Every distinct row's JSON once; the log resamples them.
    inputs = [orjson.dumps({k: (None if isinstance(v, float) and v != v else
                                v.item() if hasattr(v, "item") else v)
                            for k, v in r.items()}).decode()
              for r in X.astype(object).to_dict("records")]
    preds = [orjson.dumps(str(v)).decode() for v in labels]
    probas = [orjson.dumps([float(p) for p in row]).decode() for row in proba]
    truth = [orjson.dumps(v).decode() for v in df["churn"]]
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(df), rows)
    ts = 1.7e9 + np.sort(rng.uniform(0, DAYS * 86400, rows))
    latency = rng.gamma(2.0, 2.0, rows)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    engine = open_database(f"sqlite:///{tmp}")
    raw = engine.raw_connection()
    cur = raw.cursor()
    chunk = 100_000
    for start in range(0, rows, chunk):
        idx = range(start, min(rows, start + chunk))
        cur.executemany(
            "INSERT INTO predictions (request_id, row, ts, model, version, role, key, inputs, "
            "prediction, proba, latency_ms, status, violations) VALUES "
            "(?, 0, ?, 'telco', '1', 'champion', NULL, ?, ?, ?, ?, 200, NULL)",
            [(f"r{k}", float(ts[k]), inputs[pick[k]], preds[pick[k]], probas[pick[k]],
              float(latency[k])) for k in idx])
        labelled = [k for k in idx if k % 5 == 0]
        cur.executemany("INSERT INTO feedback (request_id, row, key, label, ts) VALUES "
                        "(?, 0, NULL, ?, ?)",
                        [(f"r{k}", truth[pick[k]], float(ts[k]) + 3600) for k in labelled])
        raw.commit()
    raw.close()
    engine.dispose()
    tmp.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    return url


def _drop_page_cache() -> bool:
    """Empty the OS page cache so the log is read from disk (Linux, root only)."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def _cli_run(url: str, folder: Path, window: str) -> tuple[float, bool]:
    """Seconds of ``mlwright monitor`` in a new process, and whether the cache was cold."""
    cold = _drop_page_cache()
    out = CACHE / "monitor.html"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlwright", "monitor", "telco", "--db", url,
                    "--reference", str(folder), "--window", window, "--no-alerts",
                    "--out", str(out)], check=True, capture_output=True)
    return time.perf_counter() - t0, cold


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="records in the log")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; best is kept")
    args = parser.parse_args(argv)

    from mlwright.monitor import run_monitor
    from mlwright.monitor.reference import load_reference

    CACHE.mkdir(parents=True, exist_ok=True)
    folder = _run_folder()
    started = time.perf_counter()
    url = _build_log(args.rows, folder)
    build_s = time.perf_counter() - started
    reference = load_reference(folder)
    cases = [("all records", str(args.rows)), ("last 5000", "5000"), ("last day", "1d")]
    results = []
    for label, window in cases:
        times, report = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = run_monitor(url, "telco", reference=reference, window=window,
                                 alerts=False)
            times.append(time.perf_counter() - t0)
        best = min(times)
        assert report is not None
        results.append({
            "case": label, "window": window, "records": report.n_records, "seconds": best,
            "first_run_seconds": times[0], "inputs_sampled": report.n_sampled,
            "records_per_s": report.n_records / best,
            "labelled": report.performance.n_labelled if report.performance else 0,
            "drifted_features": report.drifted_features, "method": report.drift.method})
    cli_s, cold = _cli_run(url, folder, str(args.rows))
    print(f"\nmonitor on a {args.rows:,}-record SQLite log (built or read from cache in "
          f"{build_s:.1f} s)\n")
    print("| window | records | inputs compared | labelled | seconds (best) | first run | "
          "drift method |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(f"| {r['case']} ({r['window']}) | {r['records']:,} | {r['inputs_sampled']:,} | "
              f"{r['labelled']:,} | {r['seconds']:.2f} | {r['first_run_seconds']:.2f} | "
              f"{r['method']} |")
    print(f"\n`mlwright monitor telco --window {args.rows}` in a new process (imports, report): "
          f"{cli_s:.2f} s, page cache {'dropped first' if cold else 'warm (not root)'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "monitor", "rows": args.rows, "repeat": args.repeat,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "results": results,
        "cli": {"window": str(args.rows), "seconds": cli_s, "page_cache_dropped": cold}},
        indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
