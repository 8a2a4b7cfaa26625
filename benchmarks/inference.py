"""Inference speed of each public dataset's champion: rows/s at batch sizes 1, 100, 10k and
the whole test set, through the compiled Python predictor, beside the reference (pandas)
path, the champion exported to ONNX run by onnxruntime (``mlwright export``: its parity on
the whole test set plus the export's probe rows is recorded; a champion that cannot be
exported exactly is reported with the refusal and, where the refusal offers one, the
convertible retrain is trained, exported and timed on its own line), and, given
``--flaml PYTHON`` (a virtual environment with FLAML), FLAML's predict on the same split in
the same run.

Each table is split 75/25 (seed 0); the champion is ``mw.train`` on the 75% with
``--budget`` seconds (cached in ``--cache`` so reruns measure the same models); FLAML gets
the same rows and budget. Batches are drawn from the test rows (with replacement for 10k).
Two extra lines train LightGBM-only champions on diamonds and telco_churn (the GBDT-only
figures). ``--student`` adds each table's distilled student (``mw.train(...,
distill="ship")``: one LightGBM trained on the ensemble's soft labels ships), with its test
metric beside its teacher's.
Batch 1 is also timed as a one-record request (``predict_records``, the server's path):
its p50 is the single-row in-process latency. onnxruntime runs batches of 1 and 100 on one
thread and larger ones on every core, as the Python predictor does (its boosters go
threaded from 2,048 rows).

``--memory-rows N`` adds the streaming check: a Parquet file of N rows resampled from
telco_churn is built in a temporary folder, and ``mlwright predict`` scores it in a child
process whose peak resident memory is reported.

    .venv/bin/python benchmarks/inference.py --budget 30 --flaml /work/peers/flaml/bin/python
    .venv/bin/python benchmarks/inference.py --dataset telco_churn --memory-rows 10000000

Prints a markdown table; writes ``benchmarks/results/inference.json`` (or ``--out``). The
machine it ran on and its load average go into the JSON: figures from a shared machine are
noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"
# The retrain a refused export offers: the families with an exact ONNX form (no k-NN;
# CatBoost only without categorical features, so left out too).
CONVERTIBLE = ["lightgbm", "xgboost", "random_forest", "extra_trees", "hist_gb", "linear",
               "mlp"]
SIZES = {"1": 1, "100": 100, "10k": 10_000}
_SIZES_WANTED = set(SIZES)  # --sizes
FLAML_RESULTS = Path(__file__).resolve().parent / "results" / "automl-60s.json"


def flaml_from_automl(path: Path, name: str, test_rows: int) -> dict[str, Any] | None:
    """FLAML's whole-test-set rows/s from benchmarks/automl.py's results (its
    ``batch_predict_s``, same 75/25 split size), for machines without a FLAML env."""
    if not path.exists():
        return None
    for r in json.loads(path.read_text()).get("results", []):
        if r.get("system") == "flaml" and r.get("dataset") == name and r.get(
                "batch_predict_s"):
            return {"all": {"rows_per_s": test_rows / r["batch_predict_s"],
                            "p50_us": r["batch_predict_s"] * 1e6},
                    "source": f"{path.name} batch_predict_s"}
    return None


def _rate(fn: Callable[[pd.DataFrame], Any], test: pd.DataFrame, size: int | None,
          seed: int = 0) -> dict[str, float]:
    """rows/s (median over repeats) of ``fn`` on batches of ``size`` rows (None: all)."""
    rng = np.random.default_rng(seed)
    if size is None:
        batches, repeats = [test], 3
    else:
        repeats = 300 if size == 1 else 30 if size <= 100 else 3
        batches = [test.iloc[rng.integers(0, len(test), size)].reset_index(drop=True)
                   for _ in range(min(repeats, 20))]
    fn(batches[0])  # warm: lazy imports, compilation
    times, cpu = [], []
    for i in range(repeats):
        batch = batches[i % len(batches)]
        start, cpu0 = time.perf_counter(), time.process_time()
        fn(batch)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu0)
    median = float(np.median(times))
    # Rows per CPU-second: on a shared machine the wall clock mostly measures the others.
    return {"rows_per_s": len(batches[0]) / median, "p50_us": median * 1e6,
            "rows_per_cpu_s": len(batches[0]) / max(float(np.median(cpu)), 1e-9)}


def _rates(fn: Callable[[pd.DataFrame], Any], test: pd.DataFrame) -> dict[str, Any]:
    out = {label: _rate(fn, test, size) for label, size in SIZES.items()
           if label in _SIZES_WANTED}
    out["all"] = _rate(fn, test, None)
    return out


def _split(name: str) -> tuple[pd.DataFrame, pd.DataFrame, str, str]:
    from mlwright.datasets import SUITE, load_suite

    spec = SUITE[name]
    df = load_suite(name).sample(frac=1.0, random_state=0).reset_index(drop=True)
    cut = int(len(df) * 0.75)
    return df.iloc[:cut], df.iloc[cut:].reset_index(drop=True), spec.target, spec.task


def _champion(name: str, families: list[str] | None, budget: float, cache: Path,
              student: bool = False) -> Any:
    """The cached champion; ``student``: trained with ``distill="ship"`` (the distilled
    LightGBM student ships, the teacher is ``alternates["teacher"]``)."""
    import mlwright as mw
    from mlwright.run import load_run

    train, _, target, _ = _split(name)
    folder = cache / (name + ("-" + "-".join(families) if families else "")
                      + ("-student" if student else ""))
    if (folder / "manifest.json").exists():
        return load_run(folder)
    result = mw.train(train, target, time_budget=budget, seed=0, families=families,
                      distill="ship" if student else False)
    result.save(folder)
    return result


def _test_scores(result: Any, name: str) -> dict[str, float]:
    """The shipped model's (and a shipped student's teacher's) test metric."""
    from mlwright.evaluate.scores import point_metrics, predictions_from

    _, test, target, task = _split(name)
    models = {"shipped": result.model, **{k: v for k, v in result.alternates.items()
                                          if k == "teacher"}}
    out = {}
    for role, model in models.items():
        # The model's own classes: a run loaded from the cache has no search result.
        p = predictions_from(task, test[target].to_numpy(), model.raw_predict(test),
                             getattr(model, "classes", None),
                             getattr(model, "threshold", None), where="test")
        out[role] = float(point_metrics(p)[result.metric])
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and v != v else
                 v.isoformat() if isinstance(v, pd.Timestamp) else v)
             for k, v in row.items()} for row in frame.to_dict("records")]


def run_mlwright(name: str, families: list[str] | None, budget: float, cache: Path,
                 reference: bool, onnx: bool = True, student: bool = False
                 ) -> dict[str, Any]:
    from mlwright.search.predictor import compile_predictor

    result = _champion(name, families, budget, cache, student=student)
    model = result.model
    test = _split(name)[1]
    X = test[list(model.feature_names)]
    predictor = compile_predictor(model, result.contract)
    out: dict[str, Any] = {
        "dataset": name + ("" if not families else " (convertible families)"
                           if families == CONVERTIBLE else " (" + "+".join(families) + " only)")
        + (" (distilled student)" if student else ""),
        "test_rows": len(X), "members": [f"{d['family']}:{d['path']}"
                                         for d in predictor.describe()],
        "compiled": _rates(lambda b: predictor.predict_frame(b), X)}
    records = _records(X.head(300))
    for r in records[:10]:
        predictor.predict_records([r])
    times = []
    for i in range(1000 if "1" in _SIZES_WANTED else 0):
        start = time.perf_counter()
        predictor.predict_records([records[i % len(records)]])
        times.append(time.perf_counter() - start)
    out["record_p50_us"] = float(np.median(times)) * 1e6 if times else float("nan")
    if reference:
        out["reference"] = {"all": _rate(lambda b: model.raw_predict(b, compiled=False),
                                         X, None)}
    ref = model.raw_predict(X, compiled=False)
    out["max_abs_diff"] = float(np.nanmax(np.abs(model.raw_predict(X) - ref)))
    if onnx:
        out["onnx"] = run_onnx(result, name, X)
    if student:
        out["test"] = _test_scores(result, name)
        out["metric"] = result.metric
    return out


def run_onnx(result: Any, name: str, X: pd.DataFrame) -> dict[str, Any]:
    """The champion exported to ONNX (parity checked on every test row) and its speed."""
    from mlwright.exceptions import ExportError
    from mlwright.export.core import to_onnx
    from mlwright.export.runtime import OnnxPredictor
    from mlwright.registry.model import LoadedModel

    loaded = LoadedModel(model=result.model, contract=result.contract, name=name)
    try:
        exported = to_onnx(loaded, rows=X)
    except ExportError as exc:
        return {"refused": str(exc)}
    one, every = OnnxPredictor(exported.data, threads=1), OnnxPredictor(exported.data)
    rates = {"1": _rate(lambda b: one.predict_frame(b), X, 1),
             "100": _rate(lambda b: one.predict_frame(b), X, 100),
             "10k": _rate(lambda b: every.predict_frame(b), X, 10_000),
             "all": _rate(lambda b: every.predict_frame(b), X, None)}
    records = _records(X.head(300))
    times = []
    for i in range(1000):
        start = time.perf_counter()
        one.predict_records([records[i % len(records)]])
        times.append(time.perf_counter() - start)
    return {"parity": exported.parity.to_dict(), "parity_summary": exported.parity.summary(),
            "export_s": exported.seconds, "size_mb": len(exported.data) / 1e6,
            "record_p50_us": float(np.median(times[10:])) * 1e6, **rates}


def run_flaml(python: str, name: str, budget: float) -> dict[str, Any] | None:
    """FLAML on the same split, in its own environment (this file run as a worker)."""
    train, test, target, task = _split(name)
    with tempfile.TemporaryDirectory() as tmp:
        train.to_parquet(Path(tmp) / "train.parquet")
        test.drop(columns=target).to_parquet(Path(tmp) / "test.parquet")
        out = Path(tmp) / "out.json"
        done = subprocess.run([python, __file__, "--flaml-worker", tmp, target, task,
                               str(budget), str(out)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            print(f"FLAML failed on {name}: {done.stderr[-500:]}", file=sys.stderr)
            return None
        return dict(json.loads(out.read_text()))


def flaml_worker(folder: str, target: str, task: str, budget: str, out: str) -> None:
    from flaml import AutoML

    train = pd.read_parquet(Path(folder) / "train.parquet")
    test = pd.read_parquet(Path(folder) / "test.parquet")
    automl = AutoML()
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]
    automl.fit(train.drop(columns=[target]), train[target], metric=metric, seed=0, verbose=0,
               task="regression" if task == "regression" else "classification",
               time_budget=float(budget))
    fn = automl.predict if task == "regression" else automl.predict_proba
    Path(out).write_text(json.dumps({"best_estimator": automl.best_estimator,
                                     **_rates(fn, test)}))


def memory_check(rows: int, budget: float, cache: Path, chunk_rows: int,
                 name: str = "telco_churn", families: list[str] | None = None
                 ) -> dict[str, Any]:
    """Peak resident memory of ``mlwright predict`` on a Parquet file of ``rows`` rows
    resampled from ``name``'s test rows, keyed by a ``row_id`` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    result = _champion(name, families, budget, cache)
    _, test, target, _ = _split(name)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "big.parquet", Path(tmp) / "scored.parquet"
        start = time.perf_counter()
        writer = None
        for first in range(0, rows, 500_000):  # written in pieces: this process stays small
            piece = test.drop(columns=target).iloc[
                rng.integers(0, len(test), min(500_000, rows - first))].reset_index(drop=True)
            piece.insert(0, "row_id", np.arange(first, first + len(piece)))
            table = pa.Table.from_pandas(piece, preserve_index=False)
            writer = writer or pq.ParquetWriter(str(data), table.schema)
            writer.write_table(table, row_group_size=100_000)
        assert writer is not None
        writer.close()
        built = time.perf_counter() - start
        folder = cache / (name + ("-" + "-".join(families) if families else ""))
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "mlwright", "predict", str(folder),
                                  str(data), "-o", str(out), "--chunk-rows", str(chunk_rows),
                                  "--id", "row_id"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        assert child.stdout is not None and child.stderr is not None
        message = (child.stdout.read() + child.stderr.read()).decode()[-400:]
        scored = pq.ParquetFile(str(out)).metadata.num_rows if out.exists() else 0
        cpu = usage.ru_utime + usage.ru_stime
        return {"dataset": name, "families": families,
                "rows_per_cpu_s": rows / max(cpu, 1e-9), "load_avg": os.getloadavg(),
                "rows": rows, "file_mb": data.stat().st_size / 2**20 if data.exists() else 0,
                "build_s": built, "predict_s": seconds, "chunk_rows": chunk_rows,
                "exit_status": os.waitstatus_to_exitcode(status), "scored_rows": scored,
                "peak_rss_mb": usage.ru_maxrss / 1024, "output": message,
                "members": result.model.describe()}


def _fmt(r: dict[str, Any] | None, key: str) -> str:
    if not r or key not in r:
        return "-"
    return f"{r[key]['rows_per_s']:,.0f}"


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--flaml-worker":
        flaml_worker(*sys.argv[2:7])
        return
    from mlwright.datasets import suite_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", help="suite tables (default: all)")
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir())
                        / "mlwright-inference-runs", help="trained champions, reused")
    parser.add_argument("--flaml", help="python of a virtual environment with FLAML")
    parser.add_argument("--no-gbdt", action="store_true", help="skip the LightGBM-only line")
    parser.add_argument("--student", action="store_true",
                        help="also each table's distilled student (mw.train distill='ship'), "
                             "with its test metric and its teacher's")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export rows")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results JSON")
    parser.add_argument("--memory-rows", type=int, default=0,
                        help="also score a Parquet file of this many rows (peak memory)")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--memory-dataset", default="telco_churn")
    parser.add_argument("--memory-families", help="e.g. lightgbm (default: every family)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES),
                        help="batch sizes besides the whole test set (1 100 10k)")
    parser.add_argument("--no-reference", action="store_true", help="skip the pandas path")
    parser.add_argument("--flaml-results", type=Path, default=FLAML_RESULTS,
                        help="without --flaml: FLAML's rows/s from this automl.py JSON")
    args = parser.parse_args(argv)
    _SIZES_WANTED.intersection_update(args.sizes)
    args.cache.mkdir(parents=True, exist_ok=True)
    load_at_start = os.getloadavg()
    names = args.dataset or suite_names(tabular_only=True)
    jobs: list[tuple[str, list[str] | None]] = [(n, None) for n in names]
    if not args.no_gbdt:  # GBDT-only champions: a large one (1,379 trees), a small one
        jobs += [("diamonds", ["lightgbm"]), ("telco_churn", ["lightgbm"])]
    runs = [(name, families, False) for name, families in jobs]
    runs += [(name, None, True) for name in names] if args.student else []
    results = []
    for name, families, student in runs:
        row = run_mlwright(name, families, args.budget, args.cache,
                           reference=not args.no_reference, onnx=not args.no_onnx,
                           student=student)
        if args.flaml and families is None and not student:
            row["flaml"] = run_flaml(args.flaml, name, args.budget)
        elif families is None:
            row["flaml"] = flaml_from_automl(args.flaml_results, name, row["test_rows"])
        results.append(row)
        print(f"done {row['dataset']}", file=sys.stderr, flush=True)
        refused = (row.get("onnx") or {}).get("refused", "")
        if refused and "--families" in refused and families is None and not student:
            # The convertible retrain the refusal offers, exported and timed the same way.
            results.append(run_mlwright(name, CONVERTIBLE, args.budget, args.cache,
                                        reference=True))
            print(f"done {name} (convertible families)", file=sys.stderr, flush=True)
    memory = (memory_check(args.memory_rows, args.budget, args.cache, args.chunk_rows,
                           args.memory_dataset,
                           args.memory_families.split(",") if args.memory_families else None)
              if args.memory_rows else None)
    print("| dataset | test rows | members | 1-row p50 µs (frame / record) | rows/s 100 | "
          "rows/s 10k | rows/s all | rows/CPU-s all | reference rows/s all | ONNX rows/s "
          "1 / 100 / 10k / all | FLAML rows/s 100 / 10k / all |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        c, f, o = r["compiled"], r.get("flaml"), r.get("onnx")
        flaml = (f"{_fmt(f, '100')} / {_fmt(f, '10k')} / {_fmt(f, 'all')}" if f else "-")
        onnx = ("-" if not o else "refused" if "refused" in o else
                " / ".join(_fmt(o, k) for k in ("1", "100", "10k", "all")))
        one = (f"{c['1']['p50_us']:,.0f} / {r['record_p50_us']:,.0f}" if "1" in c else "-")
        members = sorted({m.split(":")[1] for m in r["members"]})
        print(f"| {r['dataset']} | {r['test_rows']:,} | {len(r['members'])}: "
              f"{', '.join(members)} | {one} | {_fmt(c, '100')} | {_fmt(c, '10k')} | "
              f"{_fmt(c, 'all')} | {c['all']['rows_per_cpu_s']:,.0f} | "
              f"{_fmt(r.get('reference'), 'all')} | {onnx} | {flaml} |")
    for r in results:
        o = r.get("onnx") or {}
        print(f"\nONNX {r['dataset']}: " + (o["refused"] if "refused" in o else
              f"{o['size_mb']:.2f} MB, exported in {o['export_s']:.1f} s; 1-row p50 "
              f"{o['1']['p50_us']:,.0f} µs (frame), "
              f"{o.get('record_p50_us', float('nan')):,.0f} µs (record); "
              f"{o['parity_summary']}") if o else "", end="")
    print()
    for r in results:
        if "test" in r:
            t = r["test"]
            print(f"\n{r['dataset']}: test {r['metric']} {t['shipped']:.6g} (its teacher "
                  f"{t.get('teacher', float('nan')):.6g})", end="")
    print()
    if memory:
        print(f"\nmlwright predict on {memory['rows']:,} rows ({memory['file_mb']:.0f} MB "
              f"Parquet): {memory['predict_s']:.1f} s, peak RSS {memory['peak_rss_mb']:,.0f} "
              f"MB, exit {memory['exit_status']}, {memory['scored_rows']:,} rows written, "
              f"{memory['rows_per_cpu_s']:,.0f} rows per CPU-second")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "load_avg": os.getloadavg(),
                    "load_avg_at_start": load_at_start,
                    "uptime": subprocess.run(["uptime"], capture_output=True, text=True,
                                             check=False).stdout.strip()},
        "args": {k: str(v) for k, v in vars(args).items()}, "results": results,
        "memory": memory}, indent=2))


if __name__ == "__main__":
    main()
