"""Scale-out figures (issue 18): trials on Dask workers, Parquet scoring on Dask, and
Spark's ``spark_udf``; every cluster a real ``distributed.LocalCluster`` of worker
processes on loopback (one thread each).

1. **Trials.** ``mw.train(..., n_trials=N)`` on telco_churn (all 7,043 rows, LightGBM and
   linear) in one local process (``n_jobs=1``), on 1 Dask worker and on 2, for each of
   ``--seeds``: trials per second of the search phase (N / search seconds), and the best
   trial's CV ROC AUC and the ensemble's, whose spread across seeds shows whether the
   workers reach a best score from the same distribution as one process. Each setup first
   runs one unmeasured 2-trial training: a fresh worker's imports and search state cost
   about 3 s once per process, which would otherwise count against the first seed.
2. **Dask scoring.** A Parquet dataset of ``--rows`` rows resampled from telco_churn
   (files of 1M rows, row groups of 100k) scored by ``score_dataset`` on 2 workers and by
   the in-process ``score_file``; outputs compared row for row, streaming (a window of
   500k rows of each at a time); rows/s per worker core, rows per worker CPU-second (the
   figure a busy shared machine distorts least) and each worker's peak RSS (VmHWM).
3. **Spark.** ``--spark-rows`` rows (100,000) through ``mlflow.pyfunc.spark_udf(...,
   env_manager="local")`` in pyspark local mode (one core) against the pyfunc's predict.

    PYTHONPATH=src .venv/bin/python benchmarks/cluster.py --trials 16 --seeds 0 1 2 \\
        --trial-rows 3000 --rows 1000000 --spark-rows 100000

Prints a markdown table per part; writes ``benchmarks/results/cluster.json`` with the
machine and its load average before and after each run: on a shared 2-core machine the
figures are noisy, and two workers can only beat one when two cores are free.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "cluster.json"


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _cluster(workers: int) -> Any:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    client.wait_for_workers(workers, timeout=300)
    return cluster, client


def _trial_run(df: pd.DataFrame, *, trials: int, seed: int, client: Any) -> dict[str, Any]:
    import mlwright as mw

    load = _load()
    result = mw.train(df, "churn", n_trials=trials, families=["lightgbm", "linear"],
                      seed=seed, n_jobs=1, cluster=client)
    done = [t for t in result.search.trials if t.status == "complete"]
    best = min(done, key=lambda t: t.loss)
    return {"seed": seed, "trials": len(result.search.trials),
            "search_s": round(result.timings["search"], 2),
            "trials_per_s": round(len(result.search.trials) / result.timings["search"], 4),
            "best_trial_auc": round(result.search.metric.to_score(best.loss), 5),
            "ensemble_auc": round(result.cv_score, 5),
            "statuses": {s: sum(t.status == s for t in result.search.trials)
                         for s in sorted({t.status for t in result.search.trials})},
            "load_before": load, "load_after": _load()}


def bench_trials(trials: int, seeds: list[int], rows: int | None) -> dict[str, Any]:
    from mlwright.datasets import load_suite

    df = load_suite("telco_churn", nrows=rows)
    out: dict[str, Any] = {"dataset": "telco_churn", "rows": len(df), "n_trials": trials,
                           "families": ["lightgbm", "linear"], "runs": {}}
    for name, workers in (("local", 0), ("dask_1_worker", 1), ("dask_2_workers", 2)):
        runs = []
        cluster = client = None
        if workers:
            cluster, client = _cluster(workers)
        try:
            # Not measured: a fresh process's first training imports the families' libraries
            # and builds its search state (about 3 s on a new Dask worker), once per process.
            _trial_run(df, trials=2, seed=seeds[0] + 1000, client=client)
            for seed in seeds:
                runs.append(_trial_run(df, trials=trials, seed=seed, client=client))
                print(name, runs[-1], flush=True)
        finally:
            if client is not None:
                client.close()
                cluster.close()
        out["runs"][name] = runs
    one = np.mean([r["trials_per_s"] for r in out["runs"]["dask_1_worker"]])
    two = np.mean([r["trials_per_s"] for r in out["runs"]["dask_2_workers"]])
    out["speedup_2_vs_1"] = round(float(two / one), 3)
    return out


_TRAINED: dict[Path, Any] = {}


def _model(folder: Path) -> tuple[Any, Path]:
    """(TrainResult, run folder) of a 6-trial model on all of telco_churn, trained once."""
    import mlwright as mw
    from mlwright.datasets import load_suite

    if folder not in _TRAINED:
        _TRAINED[folder] = mw.train(load_suite("telco_churn"), "churn", n_trials=6,
                                    families=["lightgbm", "linear"], seed=0, n_jobs=1)
        _TRAINED[folder].save(folder)
    return _TRAINED[folder], folder


def _dataset(folder: Path, rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlwright.datasets import load_suite

    base = load_suite("telco_churn").drop(columns="churn")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per_file = 1_000_000
    for i, start in enumerate(range(0, rows, per_file)):
        n = min(per_file, rows - start)
        part = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       folder / f"part-{i:04d}.parquet", row_group_size=100_000)
    return folder


def _cpu_s() -> float:
    """This process's CPU seconds (user + system), for rows per CPU-second: on a shared
    machine, wall-clock rows/s says more about the other processes than about ours."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from
    the process that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_scoring(rows: int, work: Path, chunk_rows: int) -> dict[str, Any]:
    from mlwright.cluster import score_dataset
    from mlwright.serve.batchfile import score_file
    from mlwright.serve.runtime import load_source

    _, run = _model(work / "model")
    data = _dataset(work / f"rows-{rows}", rows)
    loaded = load_source(str(run))
    cluster, client = _cluster(2)
    try:
        before = client.run(_peak_rss_mb)
        cpu_before = client.run(_cpu_s)
        load = _load()
        summary = score_dataset(loaded, str(data), work / "scored", client,
                                chunk_rows=chunk_rows)
        after_load = _load()
        peaks = client.run(_peak_rss_mb)
        worker_cpu = sum(client.run(_cpu_s).values()) - sum(cpu_before.values())
    finally:
        client.close()
        cluster.close()
    t0, cpu0 = time.perf_counter(), _cpu_s()
    reference = score_file(loaded, str(data), work / "reference.parquet",
                           chunk_rows=chunk_rows)
    in_process_s, in_process_cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    t0 = time.perf_counter()
    equal = _compare(work / "scored", work / "reference.parquet")
    compare_s = time.perf_counter() - t0
    return {"rows": summary.rows, "partitions": summary.chunks, "chunk_rows": chunk_rows,
            "model": [m["family"] for m in loaded.model.describe()], "workers": 2,
            "threads_per_worker": 1, "seconds": round(summary.seconds, 2),
            "rows_per_s": round(summary.rows_per_s),
            "rows_per_s_per_core": round(summary.rows_per_s / 2),
            "rows_per_worker_cpu_s": round(summary.rows / max(worker_cpu, 1e-9)),
            "in_process_rows_per_cpu_s": round(reference.rows / max(in_process_cpu, 1e-9)),
            "compare_s": round(compare_s, 1),
            "worker_peak_rss_mb": {k: round(v, 1) for k, v in peaks.items()},
            "worker_rss_mb_before": {k: round(v, 1) for k, v in before.items()},
            "in_process_seconds": round(in_process_s, 2),
            "in_process_rows_per_s": round(reference.rows / in_process_s),
            "equal_to_in_process": equal, "load_before": load, "load_after": after_load}


def _windows(batches: Any, size: int) -> Any:
    """Arrow record batches regrouped into tables of exactly ``size`` rows (the last one
    shorter): two readers whose batches break at different rows line up."""
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def _compare(folder: Path, reference: Path, window: int = 500_000) -> bool:
    """Row for row, streaming: one window of each output in memory at a time."""
    from itertools import zip_longest

    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    expected = pq.ParquetFile(str(reference)).iter_batches(batch_size=window)
    got = ds.dataset(str(folder), format="parquet").to_batches(batch_size=window)
    # Parts are named in DATA's order.
    for a, b in zip_longest(_windows(got, window), _windows(expected, window)):
        if a is None or b is None or not a.to_pandas().equals(b.to_pandas()):
            return False
    return True


def bench_spark(rows: int, work: Path) -> dict[str, Any]:
    import mlflow.pyfunc
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import col, struct

    from mlwright.datasets import load_suite
    from mlwright.registry import Registry

    result, run = _model(work / "model")
    uri = f"sqlite:///{(work / 'mlflow.db').as_posix()}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    Registry(uri).register(result, run, name="churn")
    base = load_suite("telco_churn").drop(columns="churn")
    frame = base.iloc[np.random.default_rng(1).integers(0, len(base), rows)].reset_index(
        drop=True)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    t0 = time.perf_counter()
    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    startup = time.perf_counter() - t0
    try:
        udf = mlflow.pyfunc.spark_udf(spark, "models:/churn@champion", env_manager="local")
        sdf = spark.createDataFrame(frame).cache()
        sdf.count()
        load = _load()
        t0 = time.perf_counter()
        got = sdf.withColumn("s", udf(struct(*[col(c) for c in frame.columns]))) \
            .select("s.*").toPandas()
        spark_s = time.perf_counter() - t0
    finally:
        spark.stop()
    t0 = time.perf_counter()
    expected = mlflow.pyfunc.load_model("models:/churn@champion").predict(frame)
    pyfunc_s = time.perf_counter() - t0
    return {"rows": rows, "spark_master": "local[1]", "spark_startup_s": round(startup, 1),
            "spark_seconds": round(spark_s, 2), "spark_rows_per_s": round(rows / spark_s),
            "pyfunc_seconds": round(pyfunc_s, 2), "equal_to_pyfunc": bool(got.equals(
                expected.reset_index(drop=True))),
            "load_before": load, "load_after": _load()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trial-rows", type=int, default=None,
                        help="the first rows of telco_churn the trials train on (default all)")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--spark-rows", type=int, default=100_000)
    parser.add_argument("--parts", nargs="+", default=["trials", "scoring", "spark"])
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the model and the datasets (default: a temp one)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update({"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version()},
                    "args": {k: str(v) for k, v in vars(args).items()}})
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if "trials" in args.parts:
            results["trials"] = bench_trials(args.trials, args.seeds, args.trial_rows)
            _print_trials(results["trials"])
        if "scoring" in args.parts:
            results["scoring"] = bench_scoring(args.rows, work, args.chunk_rows)
            print(json.dumps(results["scoring"], indent=1))
        if "spark" in args.parts:
            results["spark"] = bench_spark(args.spark_rows, work)
            print(json.dumps(results["spark"], indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


def _print_trials(out: dict[str, Any]) -> None:
    print("\n| where | seed | trials | search s | trials/s | best trial AUC | ensemble AUC "
          "| load before → after |\n|---|---|---|---|---|---|---|---|")
    for name, runs in out["runs"].items():
        for r in runs:
            print(f"| {name} | {r['seed']} | {r['trials']} | {r['search_s']} | "
                  f"{r['trials_per_s']} | {r['best_trial_auc']} | {r['ensemble_auc']} | "
                  f"{r['load_before'][0]} → {r['load_after'][0]} |")
    print(f"\n2 workers vs 1: {out['speedup_2_vs_1']}x trials/s\n")


if __name__ == "__main__":
    main()
