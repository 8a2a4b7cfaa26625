"""Profile speed: ``mlwright profile`` end to end on the suite tables, and a 1M-row table.

    python benchmarks/profiling.py                 # all suite tables + 1,000,000 x 20
    python benchmarks/profiling.py --rows 200000   # a smaller synthetic table

Each suite table is exported to CSV as the quickstart does (MplsStops with vehicleSearch
kept), then ``mlwright profile FILE --target T`` runs in a fresh process: the wall time
includes interpreter start, imports, reading the CSV, profiling and writing both files.
The synthetic table (numbers, integer codes, categories, free text, a date, a boolean)
times ``profile()`` alone, in process. Prints a table and writes results/profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TABLES = {
    "telco_churn": (), "mpls_person_search": ("vehicleSearch",), "hpc_jobs": (),
    "trump_tweet_source": (), "diamonds": (), "ames_housing": (),
}


def _suite(workdir: Path) -> list[dict[str, object]]:
    from mlwright.datasets import SUITE

    rows = []
    for name, keep in TABLES.items():
        csv = workdir / f"{name}.csv"
        export = [str(BIN / "python"), "-m", "mlwright.datasets", name, str(csv)]
        for column in keep:
            export += ["--keep", column]
        subprocess.run(export, check=True)
        out = workdir / f"out_{name}"
        started = time.perf_counter()
        subprocess.run([str(BIN / "mlwright"), "profile", str(csv), "--target",
                        SUITE[name].target, "--out", str(out)], check=True,
                       capture_output=True)
        seconds = time.perf_counter() - started
        data = json.loads((out / "profile.json").read_text(encoding="utf-8"))
        rows.append({"table": name, "rows": data["n_rows"], "columns": data["n_columns"],
                     "seconds": round(seconds, 2),
                     "warnings": [f"{w['code']}:{w['column']}" for w in data["warnings"]]})
    return rows


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """n rows, 20 features + a target: the mix of kinds a real wide table has."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(7):
        values = rng.normal(size=n) * (i + 1)
        values[rng.random(n) < 0.05 * i] = np.nan
        cols[f"num{i}"] = values
    for i in range(3):
        cols[f"int{i}"] = rng.integers(0, 10 ** (i + 2), size=n)
    levels = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"], dtype=object)
    for i in range(4):
        cols[f"cat{i}"] = levels[rng.integers(0, 6, size=n)]
    words = np.array([f"w{k}" for k in range(5000)], dtype=object)
    cols["city"] = words[rng.integers(0, 5000, size=n)]
    cols["user"] = np.char.add("user", rng.integers(0, 200_000, size=n).astype(str)).astype(
        object)
    phrases = np.array([" ".join(words[rng.integers(0, 5000, size=8)]) for _ in range(20_000)],
                       dtype=object)
    cols["comment"] = phrases[rng.integers(0, len(phrases), size=n)]
    cols["flag"] = rng.random(n) < 0.3
    cols["when"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(
        rng.integers(0, 86_400 * 365 * 3, size=n), unit="s")
    cols["score"] = rng.gamma(2.0, 3.0, size=n)
    cols["y"] = np.where(cols["num1"] + rng.normal(size=n) > 0, "yes", "no")
    df = pd.DataFrame(cols)
    # As mlwright.load returns them: text in plain object columns.
    return df.astype({c: object for c in df.columns if df[c].dtype.kind in "OUT"
                      or str(df[c].dtype) == "str"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-suite", action="store_true")
    args = parser.parse_args()
    from mlwright.data.profile import profile

    results: dict[str, object] = {"load_average": os.getloadavg()[0]}
    if not args.skip_suite:
        with tempfile.TemporaryDirectory() as tmp:
            results["suite"] = _suite(Path(tmp))
        for row in results["suite"]:  # type: ignore[attr-defined]
            print(f"{row['table']:<20} {row['rows']:>7,} x {row['columns']:<3} "
                  f"{row['seconds']:>6.2f} s   {', '.join(row['warnings']) or '-'}")
    df = synthetic(args.rows)
    wall, cpu = time.perf_counter(), time.process_time()
    p = profile(df, "y")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    results["synthetic"] = {"rows": len(df), "columns": df.shape[1] - 1,
                            "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                            "warnings": [f"{w.code}:{w.column}" for w in p.warnings]}
    print(f"synthetic {len(df):,} x {df.shape[1] - 1} features: profile() {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU; warnings: {', '.join(results['synthetic']['warnings'])}")
    out = HERE / "results" / "profile.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
