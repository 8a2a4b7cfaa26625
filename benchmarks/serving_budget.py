"""--max-latency-ms / --max-size-mb on one table: the same trials trained without a serving
budget and under each budget given, with the members shipped, the CV and the measured
figures (fold-0 stand-ins before and after the drops, the refit model, the shipped model).

``mw.train(df, target, n_trials=N, seed=0, families=..., max_latency_ms=/max_size_mb=)``:
with a number of trials and a seed the trials are the same in every run, so the runs differ
only by what the budget did. Latencies are single-record p50s on the compiled predictor
(``mlwright.search.latency.measure``), so they carry the machine's load: run it on a quiet
machine for figures to quote.

    .venv/bin/python benchmarks/limits.py
    .venv/bin/python benchmarks/limits.py --dataset telco_churn --rows 2000 \\
        --budgets latency=0.3,size=0.5,latency=0.001

(Not named limits.py: run as a script, benchmarks/ comes first on sys.path and would shadow
the `limits` package the server's rate limits import; ruff also took it for first-party.)
Prints one line per run; writes ``benchmarks/results/limits.json`` (load averages included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "limits.json"
FAMILIES = "lightgbm,linear,random_forest,knn,extra_trees"
KEYS = ("before", "after", "refit", "refit_after", "dropped", "refit_dropped", "excluded",
        "shipped", "cv_before", "cv_after", "measuring_seconds", "capped")


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def run(df: Any, target: str, kw: dict[str, float], args: argparse.Namespace
        ) -> dict[str, Any]:
    import mlwright as mw

    load_before = _load()
    start = time.perf_counter()
    try:
        result = mw.train(df, target, time_budget=600, n_trials=args.trials, seed=0,
                          families=args.families.split(","), **kw)  # type: ignore[arg-type]
    except mw.MlwrightError as exc:
        return {"budget": kw, "error": f"{type(exc).__name__}: {exc}",
                "wall_s": time.perf_counter() - start, "load": [load_before, _load()]}
    limits = result.limits or {}
    return {"budget": kw, "cv": result.cv_score, "metric": result.metric,
            "members": [[m["family"], m["trial"], round(m["weight"], 3)]
                        for m in result.model.describe()],
            "wall_s": time.perf_counter() - start, "timings": result.timings,
            **{k: limits.get(k) for k in KEYS}, "load": [load_before, _load()]}


def _budgets(text: str) -> list[dict[str, float]]:
    out: list[dict[str, float]] = [{}]
    for part in filter(None, text.split(",")):
        kind, value = part.split("=")
        out.append({{"latency": "max_latency_ms", "size": "max_size_mb"}[kind]: float(value)})
    return out


def main() -> None:
    from mlwright.datasets import SUITE, load_suite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="hpc_jobs")
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--families", default=FAMILIES)
    parser.add_argument("--budgets", default="latency=0.27,size=1.317,latency=0.1,size=0.001",
                        help="comma-separated latency=MS / size=MB; a run without comes first")
    args = parser.parse_args()
    df = load_suite(args.dataset, nrows=args.rows)
    target = SUITE[args.dataset].target
    runs = []
    for kw in _budgets(args.budgets):
        row = run(df, target, kw, args)
        runs.append(row)
        print(json.dumps({k: row.get(k) for k in ("budget", "cv", "members", "error")},
                         default=str), flush=True)
        shipped = row.get("shipped") or {}
        if "p50_ms" in shipped:
            print(f"  shipped {shipped['p50_ms']:.3g} ms p50, {shipped['size_mb']:.3g} MB; "
                  f"measuring {row['measuring_seconds']:.1f} s", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "command": "benchmarks/serving_budget.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "dataset": args.dataset, "rows": args.rows, "runs": runs}, indent=1, default=str))


if __name__ == "__main__":
    main()
