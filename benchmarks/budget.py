"""Short budgets on the public suite (issue 15): does `mlwright train` hold its budget, try
every allowed family, and ship a model whose test score lands inside the CV's range?

    python benchmarks/budget.py                  # every tabular dataset, quiet machine
    python benchmarks/budget.py --busy           # the same with a second training running
    python benchmarks/budget.py --datasets telco_churn --runs 5   # a smoke run

Each run is one `mlwright train TRAIN --target T --budget B [--families F] --test TEST
--store S` process, registered as a user's default run is (in a store of its own, created
by the run; `--no-register`: without registering), on the protocol's split
(benchmarks/automl.py: 75/25, random_state=0).
Runs: `--budget 5`, `--budget 15 --families lightgbm,catboost` and `--budget 30`.
"command s" is what a user times: the whole process, Python's start, training, the report,
the honesty check and registration; the bound, budget x 1.05 + 5 s, is on it. "train s" is
the `Time:` line (reading the table, search, ensembling, refit), the budget less what the
command keeps for the report and registration. `--busy` starts a second training (the same
table, a long budget) before each run and stops it after, so that the 2 cores are shared.
Prints a table; writes benchmarks/results/budget[-busy].json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from automl import prepare
from mlwright.datasets import suite_names
from mlwright.search._base import registered_families

HERE = Path(__file__).resolve().parent
RUNS: list[tuple[float, str | None]] = [(5, None), (15, "lightgbm,catboost"), (30, None)]


def bound(budget: float) -> float:
    return budget * 1.05 + 5.0


def _busy(split: Path, target: str) -> subprocess.Popen[bytes]:
    """A second training on the same table, long enough to outlast the measured one."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlwright", "train", str(split / "train.parquet"), "--target",
         target, "--budget", "600", "--no-register", "--out",
         tempfile.mkdtemp(prefix="budget-busy-")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: the training and nothing else
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_one(split: Path, meta: dict, budget: float, families: str | None,
            busy: bool, register: bool = True) -> dict:
    out = Path(tempfile.mkdtemp(prefix="budget-run-"))
    cmd = [sys.executable, "-m", "mlwright", "train", str(split / "train.parquet"),
           "--target", meta["target"], "--budget", f"{budget:g}", "--test",
           str(split / "test.parquet"), "--out", str(out)]
    cmd += ["--store", str(out / "store")] if register else ["--no-register"]
    if families:
        cmd += ["--families", families]
    loader = _busy(split, meta["target"]) if busy else None
    try:
        if loader is not None:
            time.sleep(5)  # past its imports: the cores are shared from the first trial
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget * 4 + 300)
        command_s = time.perf_counter() - t0
    finally:
        if loader is not None:
            _stop(loader)
    row: dict = {"dataset": meta["name"], "budget": budget, "families": families or "all",
                 "busy": busy, "command_s": round(command_s, 2), "bound_s": bound(budget)}
    if proc.returncode != 0:
        row["error"] = (proc.stderr or proc.stdout)[-1500:]
        return row
    metrics = json.loads((out / "metrics.json").read_text())
    board = pd.read_csv(out / "leaderboard.csv")
    evaluation = json.loads((out / "evaluation.json").read_text())
    allowed = families.split(",") if families else list(registered_families())
    ran = board[~board["status"].isin(["skipped", "not run"])]
    tried = sorted(set(ran["family"]))
    # Families without a trial, and why (the leaderboard's note): not suited, or no time.
    not_run = {r["family"]: r["note"] for _, r in board[board["status"] == "not run"].iterrows()}
    rows = ran["rows"] if "rows" in ran else pd.Series(1.0, index=ran.index)
    honesty = evaluation["honesty"][0]
    row.update({
        "train_s": round(metrics["timings"]["total"], 2),
        "within": command_s <= bound(budget),
        "tried": tried, "not_tried": [f for f in allowed if f not in tried],
        "not_run": not_run,
        "rungs": sorted(set(ran.loc[rows < 1, "family"])),
        "trials": len(ran), "metric": honesty["metric"],
        "cv_low": honesty["interval"]["low"], "cv_high": honesty["interval"]["high"],
        "test": honesty["test_score"], "inside": honesty["inside"],
        "shipped": [f"{m['family']}" + (f"x{m['folds']}" if "folds" in m else "")
                    for m in evaluation.get("members", [])],
    })
    return row


def _not_tried(r: dict) -> str:
    """Families without a trial; "(n/a)" for those not suited to the table (sparse text for
    k-NN, say), whose reason is in the JSON's not_run."""
    notes = r.get("not_run", {})
    return ",".join(f + ("" if notes.get(f, "no time").startswith("no time") else " (n/a)")
                    for f in r["not_tried"])


def table(rows: list[dict]) -> str:
    head = ("| dataset | run | busy | command s | bound | ok | train s | families tried | "
            "not tried | CV range | test | inside |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        run = f"{r['budget']:g} s" + ("" if r["families"] == "all" else f" {r['families']}")
        if "error" in r:
            lines.append(f"| {r['dataset']} | {run} | {r['busy']} | error | | | "
                         f"{r['command_s']:.1f} | | | | | |")
            continue
        lines.append(
            f"| {r['dataset']} | {run} | {'yes' if r['busy'] else 'no'} | "
            f"{r['command_s']:.1f} | {r['bound_s']:.2f} | {'yes' if r['within'] else 'NO'} | "
            f"{r['train_s']:.1f} | {len(r['tried'])}: {','.join(r['tried'])} | "
            f"{_not_tried(r) or '-'} | {r['metric']} [{r['cv_low']:.4g}, "
            f"{r['cv_high']:.4g}] | {r['test']:.4g} | "
            f"{'inside' if r['inside'] else 'OUTSIDE' if r['inside'] is False else '?'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(suite_names(tabular_only=True)))
    parser.add_argument("--busy", action="store_true",
                        help="run a second training on the same cores during each run")
    parser.add_argument("--runs", type=int, default=len(RUNS),
                        help="only the first N of: 5 s; 15 s lightgbm,catboost; 30 s")
    parser.add_argument("--budgets", default=None,
                        help="only the runs of these budgets, comma-separated (e.g. 30)")
    parser.add_argument("--no-register", dest="register", action="store_false",
                        help="train with --no-register instead of registering each run (in a "
                        "store of its own) as a user's default run does")
    # Accepted for the commands of earlier results (registering is the default now).
    parser.add_argument("--register", dest="register", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--name", default=None,
                        help="results file name (default budget[-busy].json)")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="budget-splits-") as tmp:
        for name in args.datasets.split(","):
            split = Path(tmp) / name
            meta = prepare(name, split)
            keep = (None if args.budgets is None
                    else {float(b) for b in args.budgets.split(",")})
            for budget, families in RUNS[: args.runs]:
                if keep is not None and float(budget) not in keep:
                    continue
                row = run_one(split, meta, budget, families, args.busy, args.register)
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    out = Path(args.out) / (args.name or f"budget{'-busy' if args.busy else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2, default=str))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
