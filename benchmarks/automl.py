"""AutoML benchmark: mlwright against FLAML and AutoGluon on the public suite's protocol.

    python benchmarks/automl.py --budget 60
    python benchmarks/automl.py --budget 60 --flaml /path/to/flaml-venv/bin/python \\
        --autogluon /path/to/ag-venv/bin/python --datasets telco_churn,diamonds

Protocol (../shared/benchmark-suite.md): train_test_split(test_size=0.25, random_state=0),
stratified for classification; each system fits within the budget in its own process, one
at a time; test metric, true fit seconds, batch predict seconds, single-row latency (median
of 50 calls on a one-row DataFrame), model size on disk and peak memory are recorded.
Normalized score: (m - m_const) / (m_best - m_const) per dataset, m_best over this run.
Writes benchmarks/results/automl-<budget>s.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from mlwright.datasets import LARGE, SUITE, load_suite, suite_names
from mlwright.scoring import DEFAULT_METRIC

HERE = Path(__file__).resolve().parent
METRIC = dict(DEFAULT_METRIC)


def prepare(name: str, folder: Path, drop: tuple[str, ...] = ()) -> dict:
    spec = SUITE.get(name) or LARGE[name]
    df = load_suite(name)
    df = df.drop(columns=[c for c in drop if c in df.columns])
    strat = df[spec.target] if spec.task != "regression" else None
    train, test = train_test_split(df, test_size=0.25, random_state=0, stratify=strat)
    folder.mkdir(parents=True, exist_ok=True)
    train.to_parquet(folder / "train.parquet", index=False)
    test.to_parquet(folder / "test.parquet", index=False)
    meta = {"name": name, "target": spec.target, "task": spec.task,
            "classes": sorted(df[spec.target].unique().tolist())
            if spec.task != "regression" else None}
    (folder / "meta.json").write_text(json.dumps(meta))
    meta["const"] = constant_metric(train[spec.target], test[spec.target], spec.task,
                                    meta["classes"])
    return meta


def constant_metric(y_train: pd.Series, y_test: pd.Series, task: str, classes) -> float:
    """The metric of a constant predictor: class priors, or the training mean."""
    if task == "regression":
        return float(skm.root_mean_squared_error(y_test, np.full(len(y_test), y_train.mean())))
    prior = y_train.value_counts(normalize=True).reindex(classes).fillna(0).to_numpy()
    proba = np.tile(prior, (len(y_test), 1))
    y_idx = y_test.map({c: i for i, c in enumerate(classes)}).to_numpy()
    if task == "binary":
        return 0.5
    return float(skm.log_loss(y_idx, proba, labels=range(len(classes))))


def run_system(python: str, system: str, split: Path, budget: float) -> dict:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    t0 = time.perf_counter()
    proc = subprocess.run([python, str(HERE / "_automl_worker.py"), system, str(split),
                           str(budget), str(out)], capture_output=True, text=True,
                          timeout=budget * 4 + 600)
    if proc.returncode != 0 or not out.read_text():
        return {"system": system, "error": (proc.stderr or proc.stdout)[-2000:],
                "wall_s": time.perf_counter() - t0}
    return json.loads(out.read_text())


def normalized(results: list[dict], metas: dict[str, dict]) -> None:
    for name, meta in metas.items():
        metric = METRIC[meta["task"]]
        rows = [r for r in results if r.get("dataset") == name and metric in r]
        if not rows:
            continue
        values = [r[metric] for r in rows]
        best = max(values) if metric == "roc_auc" else min(values)
        for r in rows:
            denom = best - meta["const"]
            r["normalized"] = float((r[metric] - meta["const"]) / denom) if denom else 1.0


def markdown(results: list[dict], metas: dict[str, dict], systems: list[str],
             budget: float) -> str:
    head = "| dataset (metric) | " + " | ".join(systems) + " |"
    lines = [f"Budget {budget:g} s. Each cell: test metric · true fit s · single-row "
             f"latency ms · model MB · peak memory MB · normalized score.", "", head,
             "|" + "---|" * (len(systems) + 1)]
    for name, meta in metas.items():
        metric = METRIC[meta["task"]]
        cells = []
        for system in systems:
            r = next((r for r in results if r.get("dataset") == name and
                      r["system"] == system), None)
            if r is None or metric not in r:
                cells.append("error" if r else "-")
                continue
            value = f"{r[metric]:.4f}" if metric != "rmse" else f"{r[metric]:,.1f}"
            cells.append(f"{value} · {r['fit_s']:.0f} · {r['latency_ms']:.1f} · "
                         f"{r['size_mb']:.2f} · {r['peak_mem_mb']:.0f} · "
                         f"{r.get('normalized', float('nan')):.3f}")
        lines.append(f"| {name} ({metric}) | " + " | ".join(cells) + " |")
    means = []
    for system in systems:
        scores = [r["normalized"] for r in results if r["system"] == system and
                  "normalized" in r]
        means.append(f"{np.mean(scores):.3f} over {len(scores)}" if scores else "-")
    lines.append("| **mean normalized** | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--datasets", default=",".join(suite_names(tabular_only=True)),
                        help="comma-separated suite tables (default: the everyday suite; the "
                             f"large ones: {','.join(suite_names(large=True))})")
    parser.add_argument("--flaml", help="python of a virtual environment with flaml[automl]")
    parser.add_argument("--autogluon", help="python of a virtual environment with autogluon")
    parser.add_argument("--systems", help="comma-separated subset of systems to run")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--drop", action="append", default=[],
                        help="drop this column where present (an ablation, e.g. --drop text)")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--merge", help="an earlier results JSON: its datasets that this run "
                        "does not repeat are kept in the table")
    args = parser.parse_args()

    systems = [("mlwright", sys.executable)]
    if args.flaml:
        systems.append(("flaml", args.flaml))
    if args.autogluon:
        systems += [("autogluon-medium_quality", args.autogluon),
                    ("autogluon-best_quality", args.autogluon)]
    if args.systems:
        wanted = args.systems.split(",")
        systems = [s for s in systems if s[0] in wanted]
    cache = Path(tempfile.mkdtemp(prefix="mlwright-bench-"))
    metas, results = {}, []
    for name in args.datasets.split(","):
        metas[name] = prepare(name, cache / name, tuple(args.drop))
        for system, python in systems:  # one system at a time: the machine has 2 cores
            r = run_system(python, system, cache / name, args.budget)
            r.setdefault("dataset", name)
            results.append(r)
            metric = METRIC[metas[name]["task"]]
            print(f"{name:22s} {system:26s} "
                  + (f"{metric}={r[metric]:.4f} fit={r['fit_s']:.1f}s "
                     f"latency={r['latency_ms']:.1f}ms size={r['size_mb']:.2f}MB"
                     if metric in r else f"ERROR {r.get('error', '')[-300:]}"), flush=True)
    if args.merge:
        earlier = json.loads(Path(args.merge).read_text())
        for name, meta in earlier["metas"].items():
            if name not in metas:
                metas[name] = meta
                results += [r for r in earlier["results"] if r.get("dataset") == name]
        metas = {n: metas[n] for n in [*earlier["metas"], *metas] if n in metas}
    normalized(results, metas)
    table = markdown(results, metas, [s for s, _ in systems], args.budget)
    print("\n" + table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"automl-{args.budget:g}s{args.tag}"
    (out / f"{stem}.json").write_text(json.dumps({"budget": args.budget, "metas": metas,
                                                  "results": results}, indent=2, default=str))
    (out / f"{stem}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
