"""--distill on the public suite: the student's test metric against the teacher's 95% CV
range, and both single-row latencies.

For each table (split as benchmarks/automl.py does: 75/25, random_state=0, stratified for
classification), ``mw.train(train, target, time_budget=BUDGET, seed=0, distill=True)``
trains the teacher within the budget and its LightGBM student after it. Both are scored on
the test rows in the suite's metric (the search's: ROC AUC, log loss, RMSE). The teacher's
and the student's 95% CV ranges are the honesty check's interval for a test set of the
test's size (``mlwright.evaluate.distill.side_by_side``: out-of-fold rows on the teacher's
folds, true labels, fold spread included); "inside" asks whether the student's *test*
metric falls in the *teacher's* range. Latency: p50 of one-record ``predict_records`` calls
on each model's compiled predictor (the server's path), over the first 100 test rows as a
JSON request carries them (``mlwright.search.latency.measure``: dates as ISO strings).

    .venv/bin/python benchmarks/distill.py --budget 60
    .venv/bin/python benchmarks/distill.py --budget 30 --datasets telco_churn,hpc_jobs

One table at a time (the machine has 2 cores); prints a markdown table; writes
``benchmarks/results/distill.json`` (machine, load average before and after each table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results" / "distill.json"


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def run(name: str, budget: float, cache: Path) -> dict[str, Any]:
    import mlwright as mw
    from automl import prepare
    from mlwright.evaluate.distill import side_by_side
    from mlwright.evaluate.scores import point_metrics, predictions_from

    load_before = _load()
    meta = prepare(name, cache / name)
    train = pd.read_parquet(cache / name / "train.parquet")
    test = pd.read_parquet(cache / name / "test.parquet")
    target, task = meta["target"], meta["task"]
    start = time.perf_counter()
    result = mw.train(train, target, time_budget=budget, seed=0, distill=True)
    wall = time.perf_counter() - start
    result.save(cache / name / "run")  # teacher and student.joblib, for a look afterwards
    search = result.search
    if search.student is None:
        return {"dataset": name, "error": "no student was trained", "load": load_before}
    X_test = test.drop(columns=[target])
    d = side_by_side(search, X_test.iloc[:100], contract=result.contract, n_test=len(test),
                     seed=0)
    metric = d["metric"]
    out: dict[str, Any] = {"dataset": name, "task": task, "metric": metric,
                           "train_rows": len(train), "test_rows": len(test),
                           "budget": budget, "wall_s": wall, "timings": result.timings}
    for role, model in (("teacher", result.model), ("student", result.alternates["student"])):
        raw = model.raw_predict(X_test)
        p = predictions_from(task, test[target].to_numpy(), raw, search.classes,
                             getattr(model, "threshold", None), where="test split")
        entry = d[role]
        out[role] = {"cv": entry["cv"], "interval": entry["interval"],
                     "test": point_metrics(p)[metric], "members": entry["members"],
                     "p50_us": entry["p50_us"], "p90_us": entry["p90_us"],
                     "size_mb": entry["size_mb"]}
    rng = out["teacher"]["interval"]
    out["student_inside"] = bool(rng["low"] <= out["student"]["test"] <= rng["high"])
    out["teacher_inside"] = bool(rng["low"] <= out["teacher"]["test"] <= rng["high"])
    out["latency_ratio"] = d["latency_ratio"]
    out["student_fit"] = {k: d["student"][k] for k in ("seconds", "n_augmented", "params",
                                                        "notes")}
    out["load"] = {"before": load_before, "after": _load()}
    return out


def _fmt(v: float, metric: str) -> str:
    return f"{v:,.1f}" if metric == "rmse" else f"{v:.4f}"


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| dataset (metric) | teacher CV 95% range | teacher test | student CV 95% range "
             "| student test | student inside | teacher p50 µs | student p50 µs | ratio | "
             "distill s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['dataset']} | error: {r['error']} |")
            continue
        m = r["metric"]
        t, s = r["teacher"], r["student"]

        def rng(e: dict[str, Any], m: str = m) -> str:
            i = e["interval"]
            return f"{_fmt(e['cv'], m)} [{_fmt(i['low'], m)}, {_fmt(i['high'], m)}]"

        lines.append(
            f"| {r['dataset']} ({m}) | {rng(t)} | {_fmt(t['test'], m)} | {rng(s)} | "
            f"{_fmt(s['test'], m)} | {'yes' if r['student_inside'] else 'no'} | "
            f"{t['p50_us']:.0f} | {s['p50_us']:.0f} | {r['latency_ratio']:.1f}x | "
            f"{r['student_fit']['seconds']:.0f} |")
    done = [r for r in results if "error" not in r]
    lines.append(f"\nStudent test metric inside the teacher's 95% CV range on "
                 f"{sum(r['student_inside'] for r in done)} of {len(done)} tables.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from mlwright.datasets import suite_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--datasets", default=",".join(suite_names(tabular_only=True)))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    cache = Path(tempfile.mkdtemp(prefix="mlwright-distill-"))
    print(f"splits and run folders in {cache}", flush=True)
    results = []
    for name in args.datasets.split(","):
        r = run(name, args.budget, cache)
        results.append(r)
        print(json.dumps({k: r.get(k) for k in ("dataset", "student_inside", "latency_ratio")}),
              flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({  # after each table: a crash keeps the rest
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "python": platform.python_version()},
            "args": vars(args), "results": results}, indent=2, default=str))
    print("\n" + table(results))


if __name__ == "__main__":
    main()
