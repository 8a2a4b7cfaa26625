"""Contract and fingerprint benchmark on resampled real tables.

Builds tables of N rows by resampling trump_tweet_source (free text, a zoned datetime, a
boolean, integers) and telco_churn (categoricals, 0/1 flags, floats with NaN), then times
``fingerprint``, ``learn_contract`` and ``validate`` (on typed values, and on every value sent
as text, as a JSON request would).

    .venv/bin/python benchmarks/contract.py                  # 100k and 1M rows
    .venv/bin/python benchmarks/contract.py --rows 100000    # one size

Prints a markdown table; writes ``benchmarks/results/contract.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mlwright.data.contract import learn_contract, validate
from mlwright.data.fingerprint import fingerprint
from mlwright.datasets import load_suite

RESULTS = Path(__file__).resolve().parent / "results" / "contract.json"


def _resampled(name: str, rows: int) -> pd.DataFrame:
    return load_suite(name).sample(n=rows, replace=True, random_state=0).reset_index(drop=True)


def _best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="table sizes (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; best is kept")
    args = parser.parse_args(argv)
    results = []
    for rows in args.rows or [100_000, 1_000_000]:
        for name, target in (("trump_tweet_source", "source"), ("telco_churn", "churn")):
            df = _resampled(name, rows)
            contract = learn_contract(df, target)
            as_text = df.astype(str).astype(object).where(df.notna(), None)
            cases = {
                "fingerprint": lambda df=df: fingerprint(df),
                "learn_contract": lambda df=df, t=target: learn_contract(df, t),
                "validate (typed)": lambda df=df, c=contract: validate(df, c),
                "validate (text)": lambda t=as_text, c=contract: validate(t, c),
            }
            for case, fn in cases.items():
                seconds = _best(fn, args.repeat)
                results.append({"table": name, "rows": rows, "columns": df.shape[1],
                                "case": case, "seconds": round(seconds, 3)})
    print("| table | rows | columns | case | seconds |")
    print("|---|---:|---:|---|---:|")
    for r in results:
        print(f"| {r['table']} | {r['rows']:,} | {r['columns']} | {r['case']} | "
              f"{r['seconds']:.3f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "results": results},
                                  indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
