"""Start a retrain in a worker process and follow it to a registered challenger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlwright._json import dumps
from mlwright._logging import get_logger
from mlwright.exceptions import LoopError

__all__ = ["ACTOR", "RetrainJob", "RetrainResult", "audit", "retrain", "start_retrain"]

log = get_logger(__name__)

#: The worker process's module: an entry point beside the commands (it trains through the
#: public API, which this stage may not import), started by name.
WORKER = "mlwright.cli.retrain_worker"
ACTOR = "mlwright-loop"


def audit(config: Any, action: str, version: str | None, *, reason: str,
          evidence: dict[str, Any] | None = None, from_version: str | None = None,
          actor: str = ACTOR) -> int:
    """One entry in the project's audit log (the registry's table)."""
    from mlwright.registry.audit import AuditLog

    return AuditLog(config.store.database_url()).record(
        action, config.name, version, from_version=from_version, actor=actor, reason=reason,
        evidence=evidence)


@dataclass
class RetrainResult:
    status: str                              # registered | failed
    job_id: str
    folder: Path
    version: str | None = None
    alias: str | None = None
    error: str | None = None
    returncode: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "registered"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "job_id": self.job_id, "folder": str(self.folder),
                "version": self.version, "alias": self.alias, "error": self.error,
                "returncode": self.returncode, **self.details}


class RetrainJob:
    """A running worker process. ``wait()`` returns its :class:`RetrainResult` (and audits a
    failure); ``kill()`` stops it (SIGKILL), which leaves the registry as it was."""

    def __init__(self, config: Any, job_id: str, folder: Path, process: subprocess.Popen[bytes],
                 eval_data: pd.DataFrame, info: dict[str, Any]) -> None:
        self.config = config
        self.job_id = job_id
        self.folder = folder
        self.process = process
        self.eval_data = eval_data
        self.info = info
        self._result: RetrainResult | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.running():
            self.process.kill()

    def wait(self, timeout: float | None = None) -> RetrainResult:
        if self._result is not None:
            return self._result
        try:
            rc = self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise LoopError(f"The retrain worker {self.pid} (job {self.job_id}) is still "
                            f"running after {timeout} s; wait longer or kill it.") from exc
        result_path = self.folder / "result.json"
        if rc == 0 and result_path.exists():
            out = json.loads(result_path.read_text())
            self._result = RetrainResult("registered", self.job_id, self.folder,
                                         version=str(out["version"]), alias=out.get("alias"),
                                         returncode=rc, details=out)
            return self._result
        error_path = self.folder / "error.json"
        if error_path.exists():
            error = json.loads(error_path.read_text())["error"]
        else:
            error = f"the worker exited with code {rc} (killed by signal {-rc})" if rc < 0 \
                else f"the worker exited with code {rc} and no result"
        tail = ""
        log_path = self.folder / "worker.log"
        if log_path.exists():
            tail = log_path.read_text(errors="replace")[-2000:]
        audit(self.config, "retrain_failed", None, reason=error,
              evidence={"job": self.job_id, "returncode": rc, "log_tail": tail, **self.info})
        log.warning("retrain job %s failed: %s", self.job_id, error)
        self._result = RetrainResult("failed", self.job_id, self.folder, error=error,
                                     returncode=rc)
        return self._result


def _jobs_root(config: Any) -> Path:
    return Path(config.store.root) / "loop" / "jobs"


def start_retrain(config: Any, *, data: pd.DataFrame | None = None, reason: str = "manual",
                  evidence: dict[str, Any] | None = None, time_budget: float | None = None,
                  families: list[str] | None = None, n_trials: int | None = None,
                  seed: int | None = None, since: float | None = None) -> RetrainJob:
    """Prepare the data window, write the job, start ``python -m mlwright.cli.retrain_worker``.

    Args:
        data: the source table (default: read ``config.data``).
        reason, evidence: why (trigger results), recorded in the audit log.
        time_budget, families, n_trials, seed: override the project's training settings.
        since: when the champion was promoted (for ``reference+recent``).
    """
    from mlwright.loop.holdout import prepare_data

    split = prepare_data(config, data=data, since=since)
    job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    folder = _jobs_root(config) / job_id
    folder.mkdir(parents=True, exist_ok=True)
    split.train.to_parquet(folder / "train.parquet", index=False)
    split.eval.to_parquet(folder / "eval.parquet", index=False)
    train_opts = {"time_budget": time_budget, "families": families, "n_trials": n_trials}
    if seed is not None:
        train_opts["seed"] = seed
    (folder / "job.json").write_text(dumps(
        {"config": config.model_dump(mode="json"), "train": train_opts, "reason": reason},
        indent=2))
    info = {"job": job_id, "data": split.info, "train": train_opts}
    audit(config, "retrain_started", None, reason=reason,
          evidence={**info, "triggers": evidence or {}})
    env = dict(os.environ)
    # The worker must import this same mlwright, installed or from a source tree.
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with (folder / "worker.log").open("wb") as logfile:
        process = subprocess.Popen([sys.executable, "-m", WORKER, str(folder)],
                                   stdout=logfile, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL)
    log.info("retrain job %s started (pid %d): %s", job_id, process.pid, split.info)
    return RetrainJob(config, job_id, folder, process, split.eval, info)


def retrain(config: Any, *, wait: bool = True, **kwargs: Any) -> RetrainResult | RetrainJob:
    """Retrain now (see :func:`start_retrain` for the arguments); with ``wait`` (default)
    block until the worker is done and return its :class:`RetrainResult`."""
    job = start_retrain(config, **kwargs)
    return job.wait() if wait else job
