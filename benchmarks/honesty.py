"""Honesty check on the public suite: does the test score fall in the range CV predicts?

For every tabular suite dataset: an 80/20 split (fixed seed, stratified for classification),
``mw.train`` on the 80% with a modest budget, then ``mw.evaluate`` with the 20% as the test
table. The report's predicted range is for a test set of the test's size (bootstrap of the
out-of-fold rows at that size, widened by the fold-to-fold spread). Also timed: the
evaluation itself (metrics, intervals, explanations, the three report files).

    .venv/bin/python benchmarks/honesty.py --budget 30
    .venv/bin/python benchmarks/honesty.py --budget 10 --only telco_churn

Prints a markdown table; writes ``benchmarks/results/honesty.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import mlwright as mw
from mlwright.datasets import SUITE, load_suite, suite_names

RESULTS = Path(__file__).resolve().parent / "results" / "honesty.json"


def run_one(name: str, budget: float, seed: int) -> list[dict[str, Any]]:
    from sklearn.model_selection import train_test_split

    spec = SUITE[name]
    df = load_suite(name)
    stratify = df[spec.target] if spec.task != "regression" else None
    train, test = train_test_split(df, test_size=0.2, random_state=seed, stratify=stratify)
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    started = time.perf_counter()
    result = mw.train(train, spec.target, time_budget=budget, seed=seed)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    ev = mw.evaluate(result, data=train, test=test, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        ev.write(folder)
    eval_s = time.perf_counter() - started
    rows = []
    for h in ev.honesty:
        rows.append({
            "dataset": name, "task": spec.task, "metric": h.metric, "n_train": len(train),
            "n_test": h.n_test, "cv": h.interval.value, "low": h.interval.low,
            "high": h.interval.high, "sampling_sd": h.sampling_sd, "model_sd": h.model_sd,
            "test": h.test_score, "inside": h.inside, "fit_s": round(fit_s, 1),
            "evaluate_s": round(eval_s, 1), "validation": ev.data_summary["validation"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="a dataset (repeatable)")
    args = parser.parse_args(argv)
    names = args.only or suite_names(tabular_only=True)
    rows: list[dict[str, Any]] = []
    for name in names:
        try:
            rows += run_one(name, args.budget, args.seed)
        except Exception as exc:  # a benchmark reports a failure and goes on
            rows.append({"dataset": name, "error": f"{type(exc).__name__}: {exc}"})
        print(f"done: {name}", flush=True)
    print("\n| dataset | metric | CV | CV predicts (95%) | test | inside? | fit s | "
          "evaluate s |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['dataset']} | error: {r['error']} | | | | | | |")
            continue
        print(f"| {r['dataset']} | {r['metric']} | {r['cv']:.4g} | {r['low']:.4g} to "
              f"{r['high']:.4g} (n={r['n_test']:,}) | {r['test']:.4g} | "
              f"{'yes' if r['inside'] else 'NO'} | {r['fit_s']} | {r['evaluate_s']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"budget": args.budget, "seed": args.seed,
                                   "machine": platform.platform(), "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
