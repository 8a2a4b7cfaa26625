"""Explanation latency: one-row ``mw.explain`` against one-row ``predict_proba``, and
``global_explanation`` on a 2,000-row sample.

Trains a small ensemble per dataset (``--families``, ``--trials`` trials), then times each
call (median of ``--repeat`` one-row calls over different rows).

    .venv/bin/python benchmarks/explain.py
    .venv/bin/python benchmarks/explain.py --datasets telco_churn --families lightgbm,xgboost

Prints a markdown table; writes ``benchmarks/results/explain.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import mlwright as mw
from mlwright.datasets import SUITE, load_suite
from mlwright.evaluate.explain import global_explanation

RESULTS = Path(__file__).resolve().parent / "results" / "explain.json"


def _median_ms(fn, rows, repeat: int) -> float:
    times = []
    for i in range(repeat):
        row = rows.iloc[[i % len(rows)]]
        start = time.perf_counter()
        fn(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="telco_churn,ames_housing")
    parser.add_argument("--families", default="lightgbm,xgboost,linear")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--rows", type=int, default=5000, help="rows read per dataset")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    results = []
    for name in args.datasets.split(","):
        spec = SUITE[name]
        df = load_suite(name, nrows=args.rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = mw.train(df, spec.target, time_budget=120, n_trials=args.trials,
                           families=args.families.split(","), seed=0)
        X = df.drop(columns=spec.target)
        predict = run.model.raw_predict
        mw.explain(run, X.iloc[[0]])  # warm caches
        row = {"dataset": name, "members": [m["family"] for m in run.model.members],
               "predict_ms": _median_ms(predict, X, args.repeat),
               "explain_ms": _median_ms(lambda r, run=run: mw.explain(run, r), X, args.repeat)}
        start = time.perf_counter()
        g = global_explanation(run, X, df[spec.target], max_rows=2000)
        row["global_s"] = time.perf_counter() - start
        row["global_parts_s"] = g.timings
        results.append(row)
    print("| dataset | members | predict 1 row (ms) | explain 1 row (ms) "
          "| global, 2,000 rows (s) |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | {'+'.join(r['members'])} | {r['predict_ms']:.2f} | "
              f"{r['explain_ms']:.2f} | {r['global_s']:.1f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(),
                                   "load_avg": os.getloadavg(), "results": results},
                                  indent=2))


if __name__ == "__main__":
    main()
