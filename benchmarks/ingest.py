"""Ingest benchmark: read a 1,000,000-row, 20-column CSV built from real suite tables.

The table puts resampled columns of diamonds, mpls_person_search and telco_churn side by side
(numbers, categoricals, a zoned datetime, missing values). It is written once to a cache folder;
then every case runs in a fresh child process, so that its peak memory (the child's
``ru_maxrss``) is its own and not what an earlier case left behind.

    .venv/bin/python benchmarks/ingest.py              # all cases, once each
    .venv/bin/python benchmarks/ingest.py --repeat 3   # best time, worst peak of 3 runs

Results go to stdout as a markdown table and to ``benchmarks/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ingest.json"

# (suite table, columns taken from it): 6 + 7 + 7 = 20 columns.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("diamonds", ("carat", "cut", "color", "clarity", "depth", "price")),
    ("mpls_person_search", ("date", "problem", "race", "gender", "lat", "long", "neighborhood")),
    ("telco_churn", ("churn", "tenure", "contract", "internet_service", "payment_method",
                     "monthly_charges", "total_charges")),
)

# name -> (what it measures, what the child runs; pandas and mlwright are imported by then).
CASES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "pandas.read_csv": ("pandas' default C parser, no type work",
                        lambda path: sys.modules["pandas"].read_csv(path)),
    "mlwright.load": ("pyarrow parse + normalize_frame",
                      lambda path: sys.modules["mlwright"].load(path)),
    "mlwright.load(sample=100_000)": ("parse all, convert and normalize 10%",
                                      lambda path: sys.modules["mlwright"].load(
                                          path, sample=100_000)),
    "mlwright.load + profile": ("the first thing a user runs",
                                lambda path: sys.modules["mlwright"].profile(
                                    sys.modules["mlwright"].load(path))),
}


def cache_dir() -> Path:
    folder = Path(os.environ.get("MLWRIGHT_BENCH_CACHE",
                                 Path(tempfile.gettempdir()) / "mlwright-bench"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_csv(n_rows: int, seed: int = 0) -> Path:
    """Write the benchmark CSV once (rows resampled with replacement from each suite table)."""
    path = cache_dir() / f"ingest_{n_rows}x20_seed{seed}.csv"
    if path.exists() and path.stat().st_size > 0:
        return path
    import numpy as np
    import pandas as pd

    from mlwright.datasets import load_suite

    rng = np.random.default_rng(seed)
    pieces = []
    for name, columns in PARTS:
        table = load_suite(name)[list(columns)]
        rows = rng.integers(0, len(table), size=n_rows)
        pieces.append(table.iloc[rows].reset_index(drop=True))
    df = pd.concat(pieces, axis=1)
    partial = path.with_suffix(".partial")
    df.to_csv(partial, index=False)
    partial.replace(path)  # never leave a half-written file under the final name
    return path


def _child(case: str, path: str) -> None:
    """Run one case in this (fresh) process and print its measurements as JSON."""
    import warnings

    import pandas  # noqa: F401 (imported before the clock starts)

    import mlwright as mw

    warnings.simplefilter("ignore")
    if "profile" in case:
        try:
            mw.profile  # noqa: B018 (resolve the lazy attribute before timing)
        except (AttributeError, ImportError) as exc:
            print(json.dumps({"skipped": f"mlwright.profile is not available ({exc})"}))
            return
    _ = mw.load  # import the loader before the clock starts
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = CASES[case][1](path)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shape = list(out.shape) if hasattr(out, "shape") else None
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "baseline_mb": baseline_mb,
                      "shape": shape}))


def run_case(case: str, path: Path, repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, __file__, "--child", case, str(path)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if "skipped" in result:
            return result
        runs.append(result)
    return {
        "seconds": min(r["seconds"] for r in runs),
        "seconds_all": [round(r["seconds"], 3) for r in runs],
        "peak_mb": max(r["peak_mb"] for r in runs),
        "baseline_mb": min(r["baseline_mb"] for r in runs),
        "shape": runs[0]["shape"],
    }


def markdown(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| case | seconds | peak MB | before MB | rows x cols | what |",
             "|---|---:|---:|---:|---|---|"]
    for case, r in results.items():
        what = CASES[case][0]
        if "seconds" not in r:
            lines.append(f"| {case} | - | - | - | - | {r.get('skipped') or r.get('error')} |")
            continue
        shape = " x ".join(f"{n:,}" for n in r["shape"]) if r["shape"] else "-"
        lines.append(f"| {case} | {r['seconds']:.2f} | {r['peak_mb']:,.0f} | "
                     f"{r['baseline_mb']:,.0f} | {shape} | {what} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (best time)")
    parser.add_argument("--case", action="append", choices=list(CASES),
                        help="run only these cases (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return

    start = time.perf_counter()
    path = build_csv(args.rows)
    print(f"CSV: {path} ({path.stat().st_size / 2**20:,.0f} MiB, {args.rows:,} rows x 20 "
          f"columns; ready in {time.perf_counter() - start:.1f} s)", flush=True)
    results = {}
    for case in args.case or list(CASES):
        results[case] = run_case(case, path, args.repeat)
        print(f"  {case}: {results[case]}", flush=True)

    import pandas as pd
    import pyarrow

    report = {
        "benchmark": "ingest",
        "csv": {"rows": args.rows, "columns": 20, "bytes": path.stat().st_size,
                "built_from": {name: list(cols) for name, cols in PARTS}},
        "repeat": args.repeat,
        "peak_mb": "ru_maxrss of the child process (includes the interpreter and imports; "
                   "'baseline_mb' is the same figure just before the timed call)",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "pandas": pd.__version__,
                    "pyarrow": pyarrow.__version__},
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown(results))
    print(f"\nWrote {args.output}")


if __name__ == "__main__":
    main()
