"""In-process prediction latency: the pandas path against the compiled record predictor.

For each suite table, trains a model on a slice (``mw.train``, small budget), then times
predictions for held-out records, 1 and 100 at a time:

* pandas: ``model.predict_proba(pd.DataFrame(records))`` (``predict`` for regression), what
  a server does without a compiled path;
* compiled: ``compile_predictor(model, contract).predict_records(records)``.

Both answers are compared (max absolute difference). Single-threaded members throughout.

    .venv/bin/python benchmarks/predict_latency.py                      # the whole suite
    .venv/bin/python benchmarks/predict_latency.py --dataset telco_churn --budget 20

Prints a markdown table; writes ``benchmarks/results/predict_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlwright as mw
from mlwright.datasets import SUITE, load_suite
from mlwright.exceptions import MlwrightError
from mlwright.search.predictor import compile_predictor

RESULTS = Path(__file__).resolve().parent / "results" / "predict_latency.json"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a JSON request would carry them: None for missing, ISO strings for dates."""
    return [{k: (None if isinstance(v, float) and v != v else
                 v.isoformat() if isinstance(v, pd.Timestamp) else v)
             for k, v in row.items()} for row in frame.to_dict("records")]


def _timings(fn: Callable[[list[dict[str, Any]]], Any], batches: list[list[dict[str, Any]]],
             repeat: int) -> dict[str, float]:
    for batch in batches[:5]:  # warm caches and lazy imports
        fn(batch)
    times = []
    for i in range(repeat):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1e3
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def run(name: str, rows: int, budget: float, repeat: int) -> dict[str, Any]:
    spec = SUITE[name]
    df = load_suite(name, nrows=rows, seed=0)
    task = "regression" if spec.task == "forecasting" else None
    cut = int(len(df) * 0.8)
    train, held = df.iloc[:cut], df.iloc[cut:]
    try:
        result = mw.train(train, spec.target, time_budget=budget, task=task, seed=0)
    except MlwrightError:  # a busy machine fit nothing in time (text tables): more time
        result = mw.train(train, spec.target, time_budget=budget * 3, task=task, seed=0)
    model = result.model
    records = _records(held.drop(columns=spec.target))
    start = time.perf_counter()
    predictor = compile_predictor(model, result.contract)
    compile_s = time.perf_counter() - start

    regression = model.task == "regression"

    def pandas_path(batch: list[dict[str, Any]]) -> Any:
        frame = pd.DataFrame(batch)
        return model.predict(frame) if regression else model.predict_proba(frame)

    compiled = predictor.predict_records
    fast_pred, fast_proba = compiled(records)
    slow = pandas_path(records)
    diff = float(np.max(np.abs((fast_pred if regression else fast_proba) - slow)))
    out: dict[str, Any] = {
        "dataset": name, "task": model.task, "train_rows": cut,
        "members": [f"{d['family']}:{d['path']}" for d in predictor.describe()],
        "compile_s": compile_s, "max_abs_diff": diff,
    }
    singles = [[r] for r in records]
    hundreds = [records[i:i + 100] for i in range(0, max(1, len(records) - 99), 37)]
    for label, batches, reps in (("1", singles, repeat), ("100", hundreds, max(20, repeat // 5))):
        out[f"pandas_{label}"] = _timings(pandas_path, batches, reps)
        out[f"compiled_{label}"] = _timings(compiled, batches, reps)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", help="suite tables (default: all)")
    parser.add_argument("--rows", type=int, default=3000, help="rows loaded per table")
    parser.add_argument("--budget", type=float, default=15.0, help="training seconds")
    parser.add_argument("--repeat", type=int, default=300, help="timed 1-row calls")
    args = parser.parse_args(argv)
    results = [run(name, args.rows, args.budget, args.repeat)
               for name in args.dataset or list(SUITE)]
    print("| dataset | members (path) | rows | pandas median / p99 ms | compiled median / "
          "p99 ms | speed-up (median) | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for n in ("1", "100"):
            p, c = r[f"pandas_{n}"], r[f"compiled_{n}"]
            print(f"| {r['dataset']} | {', '.join(r['members'])} | {n} | "
                  f"{p['median_ms']:.2f} / {p['p99_ms']:.2f} | "
                  f"{c['median_ms']:.2f} / {c['p99_ms']:.2f} | "
                  f"{p['median_ms'] / c['median_ms']:.1f}x | {r['max_abs_diff']:.1e} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
