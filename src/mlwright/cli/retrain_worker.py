"""The retrain worker: ``python -m mlwright.cli.retrain_worker JOB_FOLDER``.

A process entry point, so it lives beside the commands: it trains through the public API
(``mlwright.api.train``, the one definition of how a table becomes a model) and registers,
which the loop (a stage below the API) may not import. ``loop/jobs.py`` starts it by module
name. Runs in its own process so that training never blocks serving (nor the loop). It reads
``job.json`` and ``train.parquet`` from the job folder, trains with the project's config and
budget, saves the run, registers it (as ``challenger``, or ``champion`` when there is none),
and writes ``result.json`` last, atomically. Killed at any point before that, it leaves no
result and, thanks to the registry's one-transaction registration, no broken version.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from mlwright._json import dumps

__all__ = ["main", "run_job"]


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(value, indent=2))
    os.replace(tmp, path)


def run_job(folder: Path) -> dict[str, Any]:
    import pandas as pd

    from mlwright.api import train
    from mlwright.config import ProjectConfig
    from mlwright.registry.core import CHALLENGER, CHAMPION, Registry

    started = time.monotonic()
    job = json.loads((folder / "job.json").read_text())
    config = ProjectConfig(**job["config"])
    df = pd.read_parquet(folder / "train.parquet")
    _write_json(folder / "status.json", {"stage": "training", "pid": os.getpid()})
    opts = job.get("train", {})
    budget = opts.get("time_budget") or config.loop.time_budget or config.train.time_budget
    result = train(df, config.data.target, time_budget=float(budget),
                   metric=None if config.train.metric == "auto" else config.train.metric,
                   task=None if config.train.task == "auto" else config.train.task,
                   seed=int(opts.get("seed", config.train.seed)),
                   n_trials=opts.get("n_trials"), families=opts.get("families"),
                   cluster=config.cluster)
    run_folder = result.save(folder / "run")
    _write_json(folder / "status.json", {"stage": "registering", "pid": os.getpid()})
    registry = Registry(config.store.resolved_tracking_uri(),
                        database_url=config.store.database_url())
    try:
        registry.resolve(f"{config.name}@{CHAMPION}")
        alias = CHALLENGER
    except Exception:  # no champion yet: the first model serves
        alias = CHAMPION
    info = registry.register(result, run_folder, name=config.name,
                             config=config.model_dump(mode="json"), alias=alias,
                             sample=df.drop(columns=[config.data.target]).head(3))
    out = {"status": "registered", "version": info.version, "alias": alias,
           "metric": result.metric, "cv_score": result.cv_score, "train_rows": len(df),
           "seconds": time.monotonic() - started, "run_folder": str(run_folder)}
    _write_json(folder / "result.json", out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        # An internal entry point (start_retrain runs it): a usage line, not a CLI.
        sys.stderr.write("usage: python -m mlwright.cli.retrain_worker JOB_FOLDER\n")
        return 2
    folder = Path(args[0])
    try:
        run_job(folder)
    except BaseException as exc:  # recorded for the parent, which audits the failure
        _write_json(folder / "error.json", {"error": f"{type(exc).__name__}: {exc}",
                                            "traceback": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
