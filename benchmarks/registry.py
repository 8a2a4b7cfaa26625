"""Cost of tracking and registering a training in MLflow, against the training itself.

Trains on telco_churn (all rows) for ``--budget`` seconds, then, in a fresh interpreter
(as ``mlwright train`` pays it), times ``Registry.register`` into a new sqlite store
(MLflow imports, store creation, run, params, metrics, artifacts, pyfunc model, version,
alias) and a second registration into the now existing store. The issue's bar: at most 10%
of a 60 s training. Also times `mlwright train` itself with and without registering (the
CLI imports MLflow while the search runs, so a user pays only the logging itself).

    .venv/bin/python benchmarks/registry.py               # 60 s training
    .venv/bin/python benchmarks/registry.py --budget 20   # shorter, on a busy machine

Prints a table; writes ``benchmarks/results/registry.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "registry.json"

WORKER = """
import json, sys, time
t0 = time.perf_counter()
import joblib
from pathlib import Path
from mlwright.registry import Registry
pickled, folder, uri = sys.argv[1:4]
result = joblib.load(pickled)
t1 = time.perf_counter()
reg = Registry(uri)
reg.client  # imports MLflow, creates the store
t_client = time.perf_counter()
reg.register(result, Path(folder), name="telco_churn")
t2 = time.perf_counter()
reg.register(result, Path(folder), name="telco_churn")
t3 = time.perf_counter()
loaded = reg.load("telco_churn@champion")
t4 = time.perf_counter()
print(json.dumps({"load_result_s": t1 - t0, "first_register_s": t2 - t1,
                  "mlflow_import_and_store_s": t_client - t1,
                  "second_register_s": t3 - t2, "load_model_s": t4 - t3}))
"""


def _cli_train(csv: Path, root: Path, budget: float, register: bool) -> float:
    """Wall seconds of `mlwright train` as a user runs it (report included), in a new store."""
    command = [str(Path(sys.executable).parent / "mlwright"), "train", str(csv), "--target",
               "churn", "--budget", str(budget), "--out", str(root / "run"),
               "--store", str(root / ".mlwright")]
    if not register:
        command.append("--no-register")
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=root)
    return time.perf_counter() - started


def cli_overhead(budget: float) -> dict[str, float]:
    """What registering adds to `mlwright train`: the same command with and without it."""
    from mlwright.datasets import load_suite

    with tempfile.TemporaryDirectory(prefix="mlwright-bench-cli-") as tmp:
        csv = Path(tmp) / "telco.csv"
        load_suite("telco_churn").to_csv(csv, index=False)
        runs = {}
        for register in (False, True):
            root = Path(tmp) / ("with" if register else "without")
            root.mkdir()
            runs[register] = _cli_train(csv, root, budget, register)
    return {"cli_without_register_s": runs[False], "cli_with_register_s": runs[True],
            "cli_overhead_s": runs[True] - runs[False]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0)
    args = parser.parse_args()
    cli = cli_overhead(args.budget)

    import joblib

    import mlwright as mw
    from mlwright.datasets import load_suite

    df = load_suite("telco_churn")
    started = time.perf_counter()
    result = mw.train(df, "churn", time_budget=args.budget, seed=0)
    train_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="mlwright-bench-") as tmp:
        root = Path(tmp)
        folder = result.save(root / "run")
        joblib.dump(result, root / "result.joblib")
        uri = f"sqlite:///{(root / 'store' / 'mlflow.db').as_posix()}"
        proc = subprocess.run([sys.executable, "-c", WORKER, str(root / "result.joblib"),
                               str(folder), uri], capture_output=True, text=True, check=True)
        timings = json.loads(proc.stdout.strip().splitlines()[-1])
        folder_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    rows = [("training (mw.train)", train_s, None),
            ("register, new store (imports + store + run + model + version)",
             timings["first_register_s"], timings["first_register_s"] / train_s),
            ("  of which: import MLflow + create the store",
             timings["mlflow_import_and_store_s"],
             timings["mlflow_import_and_store_s"] / train_s),
            ("register, existing store (MLflow already imported)", timings["second_register_s"],
             timings["second_register_s"] / train_s),
            ("load_model (hashes verified)", timings["load_model_s"], None),
            ("`mlwright train` (report included), --no-register", cli["cli_without_register_s"],
             None),
            ("`mlwright train`, registering into a new store", cli["cli_with_register_s"], None),
            ("  what registering adds to `mlwright train`", cli["cli_overhead_s"],
             cli["cli_overhead_s"] / args.budget)]
    print(f"\nRegistry cost on telco_churn ({len(df):,} rows, budget {args.budget:g} s, "
          f"run folder {folder_mb:.1f} MB)\n")
    print(f"| {'step':<62} | {'seconds':>8} | {'share of training':>17} |")
    print(f"|{'-' * 64}|{'-' * 10}|{'-' * 19}|")
    for name, seconds, share in rows:
        shown = "" if share is None else f"{share:.1%}"
        print(f"| {name:<62} | {seconds:>8.2f} | {shown:>17} |")
    payload = {"dataset": "telco_churn", "rows": len(df), "budget_s": args.budget,
               "train_s": train_s, **timings, **cli,
               "cli_share": cli["cli_overhead_s"] / args.budget, "run_folder_mb": folder_mb,
               "first_share": timings["first_register_s"] / train_s,
               "second_share": timings["second_register_s"] / train_s,
               "python": platform.python_version(), "machine": platform.machine(),
               "note": "timed on a shared 2-core machine with other work running"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nWrote {RESULTS}")


if __name__ == "__main__":
    main()
