"""Report generation time on a large multiclass table (issue 14: at most 15 s).

Resamples diamonds into a 30,000-row, 6-class table (target ``color`` without its rarest
level ``J``), trains a small ensemble, then times ``evaluate`` with a held-out test set and
one sensitive column, and ``Evaluation.write`` (report.html, model card, JSON), part by part.

    .venv/bin/python benchmarks/report.py
    .venv/bin/python benchmarks/report.py --rows 30000 --budget 20 --families lightgbm,linear

Prints a markdown table; writes ``benchmarks/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import mlwright as mw
from mlwright.datasets import load_suite

RESULTS = Path(__file__).resolve().parent / "results" / "report.json"


def six_class_diamonds(rows: int, seed: int) -> tuple:
    df = load_suite("diamonds")
    df = df[df["color"].astype(str) != "J"]
    df = df.sample(n=rows, replace=rows > len(df), random_state=seed).reset_index(drop=True)
    df["color"] = df["color"].astype(str)
    cut = int(0.8 * len(df))
    return df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30000)
    parser.add_argument("--families", default=None,
                        help="comma-separated families (default: all, as a user gets)")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--budget", type=float, default=20.0, help="training budget (s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, test = six_class_diamonds(args.rows, args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        run = mw.train(train, "color", time_budget=args.budget, n_trials=args.trials,
                       families=args.families.split(",") if args.families else None,
                       seed=args.seed)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        ev = mw.evaluate(run, train, test, sensitive=["cut"])
        evaluate_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            ev.write(folder)
            write_s = time.perf_counter() - start
    row = {"rows": args.rows, "classes": int(train["color"].nunique()),
           "members": [m["family"] for m in run.model.members], "train_s": train_s,
           "evaluate_s": evaluate_s, "write_s": write_s,
           "report_s": evaluate_s + write_s, "parts_s": ev.timings}
    print("| rows | classes | members | evaluate (s) | write (s) | report total (s) |")
    print("|---:|---:|---|---:|---:|---:|")
    print(f"| {row['rows']:,} | {row['classes']} | {'+'.join(row['members'])} | "
          f"{evaluate_s:.1f} | {write_s:.1f} | {row['report_s']:.1f} |")
    print("parts (s):", ", ".join(f"{k} {v:.2f}" for k, v in ev.timings.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(),
                                   "load_avg": os.getloadavg(), "result": row}, indent=2))


if __name__ == "__main__":
    main()
