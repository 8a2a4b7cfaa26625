"""One table from several benchmarks/automl.py result files of the same budget.

The protocol runs one system at a time, and a 300 s comparison of four systems on six
tables is two hours: it is measured in several runs (one per system, or per group of
tables), each writing its own JSON. This script puts them side by side and normalizes
each table's scores over every system that ran on it (automl.py normalizes within a run).

    python benchmarks/combine.py benchmarks/results/automl-300s-s28.json \\
        benchmarks/results/automl-300s-agm-s28.json ... --tag=-all-s29

A system measured on the same table in two files keeps the later file's figure.
Writes benchmarks/results/automl-<budget>s<tag>.json and .md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from automl import HERE, markdown, normalized


def combine(paths: list[Path]) -> tuple[float, dict[str, dict], list[dict]]:
    """(budget, metas, results) of the files together; a later file wins a repeated
    (dataset, system)."""
    budgets, metas, by_key = set(), {}, {}
    for path in paths:
        run = json.loads(path.read_text())
        budgets.add(float(run["budget"]))
        for name, meta in run["metas"].items():
            metas.setdefault(name, meta)
        for r in run["results"]:
            by_key[(r.get("dataset"), r["system"])] = {**r, "source": path.name}
    if len(budgets) != 1:
        raise SystemExit(f"the files hold different budgets: {sorted(budgets)}; a table "
                         f"compares one budget")
    results = list(by_key.values())
    for r in results:
        r.pop("normalized", None)  # normalized again over every system
    return budgets.pop(), metas, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="automl.py result JSON files")
    parser.add_argument("--tag", default="-combined", help="suffix of the result files")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    budget, metas, results = combine(args.files)
    systems = list(dict.fromkeys(r["system"] for r in results))
    normalized(results, metas)
    table = markdown(results, metas, systems, budget)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"automl-{budget:g}s{args.tag}"
    (out / f"{stem}.json").write_text(json.dumps({
        "budget": budget, "metas": metas, "results": results,
        "combined_from": [p.name for p in args.files]}, indent=2, default=str))
    (out / f"{stem}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
