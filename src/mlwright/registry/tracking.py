"""One training as one MLflow run: params, metrics (with intervals), evidence files, lineage
and the model, logged in a handful of calls so that tracking stays cheap."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwright._logging import get_logger
from mlwright.run import RunFolder, TrainResult

__all__ = ["LoggedRun", "end_orphaned_runs", "end_run", "flatten", "git_commit", "log_training",
           "package_versions"]

log = get_logger(__name__)

# Files of the run folder shown at the top of the MLflow run (the model keeps all of them).
EVIDENCE = (RunFolder.LEADERBOARD, RunFolder.METRICS, RunFolder.CONTRACT,
            RunFolder.EVALUATION, RunFolder.REPORT, RunFolder.MODEL_CARD)
_PACKAGES = ("mlwright", "scikit-learn", "lightgbm", "xgboost", "catboost", "optuna", "pandas",
             "numpy", "scipy", "pyarrow", "mlflow", "shap")
_MAX_PARAM = 6000  # MLflow's limit on a param value
TAG_HOST = "mlwright.host"   # with TAG_PID: which process logs a RUNNING run
TAG_PID = "mlwright.pid"


@dataclass
class LoggedRun:
    run_id: str
    source: str                  # artifact URI of the MLflow model
    run_path: str                # the run folder, relative to the MLflow model
    manifest: dict[str, str]     # sha256 of every file of the run folder, as logged
    seconds: float


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (lists kept as values)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, name))
    else:
        out[prefix] = obj
    return out


def _metric_key(key: str) -> str:
    # MLflow keys: alphanumerics, _ - . space / only.
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", key)[:250]


def _numeric_leaves(obj: Any, prefix: str, out: dict[str, float]) -> None:
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float):
        if math.isfinite(obj):
            out[_metric_key(prefix)] = float(obj)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _numeric_leaves(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(obj, list) and len(obj) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in obj):
        # [low, high]: an interval
        _numeric_leaves(obj[0], f"{prefix}.low", out)
        _numeric_leaves(obj[1], f"{prefix}.high", out)


def git_commit(cwd: str | Path | None = None) -> tuple[str, bool] | None:
    """The user's commit and whether the tree has uncommitted changes; None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=5, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10,
                               check=False)
        return head.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in _PACKAGES:
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    import platform

    found["python"] = platform.python_version()
    return found


def trials_table(result: TrainResult) -> Any:
    """Every trial of the search as one table (params as JSON): cheap, unlike a run each."""
    import pandas as pd

    search = getattr(result, "search", None)
    trials = getattr(search, "trials", None) or []
    rows = [{"trial": t.number, "family": t.family, "style": t.style,
             "target_transform": t.target_transform, "status": t.status,
             "loss": t.loss if math.isfinite(t.loss) else None, "seconds": t.seconds,
             "fold_losses": json.dumps([float(v) for v in t.fold_losses]),
             "params": json.dumps(t.params, default=str, sort_keys=True),
             "error": t.error}
            for t in trials]
    return pd.DataFrame(rows)


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def log_training(client: Any, experiment_id: str, result: TrainResult, run_folder: Path, *,
                 name: str, config: dict[str, Any] | None, data_fingerprint: str | None,
                 sample: Any = None, trials: Any = None) -> LoggedRun:
    """Create the run and log everything; the run stays RUNNING until it is registered
    (FAILED if logging fails; KILLED by the next registration if this process dies).
    ``trials``: the search's trials table (default: :func:`trials_table` of ``result``)."""
    started = time.monotonic()
    run_folder = Path(run_folder)
    params_used = dict(getattr(result, "params", {}) or {})
    seed = params_used.get("seed")
    commit = git_commit()
    versions = package_versions()
    tags = {"mlwright.name": name, "mlwright.target": str(result.target),
            "mlwright.task": str(getattr(result.task, "value", result.task)),
            "mlwright.metric": str(result.metric), "mlwright.seed": str(seed),
            "mlwright.data_fingerprint": data_fingerprint or "",
            "mlwright.version": versions.get("mlwright", ""),
            "mlflow.runName": f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())}
    if commit is not None:
        tags["mlflow.source.git.commit"] = commit[0]
        tags["mlwright.git_dirty"] = str(commit[1]).lower()
    run = client.create_run(experiment_id, tags=tags)
    run_id = run.info.run_id
    try:
        return _log_run(client, run_id, result, run_folder, name=name, config=config,
                        data_fingerprint=data_fingerprint, sample=sample, trials=trials,
                        commit=commit, versions=versions, started=started)
    except BaseException as exc:
        end_run(client, run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise


def end_run(client: Any, run_id: str, status: str) -> None:
    """Mark a run ended; best effort, as it runs while another error is on its way up."""
    try:
        client.set_terminated(run_id, status)
    except Exception as exc:
        log.warning("could not mark run %s %s: %s", run_id, status, exc)


def end_orphaned_runs(client: Any, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs that a process of this machine started and that process
    is gone (``kill -9`` or a crash while registering). Runs of other machines are left
    alone: whether they still run cannot be told from here."""
    host = socket.gethostname()
    found = client.search_runs([experiment_id], filter_string=(
        f"attributes.status = 'RUNNING' and tags.`{TAG_HOST}` = '{host}'"), max_results=200)
    ended = []
    for run in found:
        pid = run.data.tags.get(TAG_PID, "")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        end_run(client, run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
    if ended:
        log.info("marked %d run(s) of ended processes KILLED", len(ended))
    return ended


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _log_run(client: Any, run_id: str, result: TrainResult, run_folder: Path, *, name: str,
             config: dict[str, Any] | None, data_fingerprint: str | None, sample: Any,
             trials: Any, commit: tuple[str, bool] | None, versions: dict[str, str],
             started: float) -> LoggedRun:
    from mlflow.entities import Metric, Param

    from mlwright.registry.pyfunc import save_pyfunc

    params_used = dict(getattr(result, "params", {}) or {})
    seed = params_used.get("seed")

    params = {f"config.{k}": v for k, v in flatten(config or {}).items()}
    params.update({f"train.{k}": v for k, v in params_used.items()})
    params["train.target"] = result.target
    param_list = [Param(k[:250], (json.dumps(v, default=str) if isinstance(v, list | dict)
                                  else str(v))[:_MAX_PARAM]) for k, v in params.items()]

    now = int(time.time() * 1000)
    metric_name = _metric_key(str(result.metric))
    metrics: list[Metric] = [Metric(f"cv_{metric_name}", float(result.cv_score), now, 0)]
    metrics += [Metric(f"cv_{metric_name}_fold", float(v), now, i)
                for i, v in enumerate(result.cv_scores) if math.isfinite(v)]
    # The spread of the finite fold scores only: a fold scored inf (an overflowing
    # squared error) has no spread, and statistics.stdev of floats with inf raises
    # "'float' object has no attribute 'numerator'".
    finite_folds = [float(v) for v in result.cv_scores if math.isfinite(v)]
    if len(finite_folds) > 1:
        import numpy as np

        with np.errstate(over="ignore", invalid="ignore"):  # 1e300-sized scores: inf
            spread = float(np.std(finite_folds, ddof=1))
        if math.isfinite(spread):
            metrics.append(Metric(f"cv_{metric_name}_std", spread, now, 0))
    for key, value in (result.timings or {}).items():
        if isinstance(value, int | float) and math.isfinite(value):
            metrics.append(Metric(_metric_key(f"time_{key}"), float(value), now, 0))
    evaluation = run_folder / RunFolder.EVALUATION
    if evaluation.exists():
        leaves: dict[str, float] = {}
        try:
            _numeric_leaves(json.loads(evaluation.read_text()), "eval", leaves)
        except (ValueError, OSError) as exc:
            log.warning("%s could not be read (%s); its metrics are not logged",
                        RunFolder.EVALUATION, exc)
        metrics += [Metric(k, v, now, 0) for k, v in list(leaves.items())[:900]]
    if trials is None:
        trials = trials_table(result)
    metrics.append(Metric("n_trials", float(len(trials)), now, 0))

    for chunk in _batches(param_list, 100):
        client.log_batch(run_id, params=chunk, synchronous=True)
    for chunk in _batches(metrics, 1000):
        client.log_batch(run_id, metrics=chunk, synchronous=True)

    # Stage everything in one folder and upload it in one call.
    with tempfile.TemporaryDirectory(prefix="mlwright-log-") as tmp:
        stage = Path(tmp)
        for fname in EVIDENCE:
            if (run_folder / fname).exists():
                shutil.copy2(run_folder / fname, stage / fname)
        if not trials.empty:
            trials.to_csv(stage / "trials.csv", index=False)
        lineage = {"name": name, "data_fingerprint": data_fingerprint, "seed": seed,
                   "target": result.target, "train_params": params_used,
                   "config": config, "git": None if commit is None else
                   {"commit": commit[0], "dirty": commit[1]}, "packages": versions}
        (stage / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
        model_dir = save_pyfunc(run_folder, stage / "model", result.contract, sample=sample)
        from mlflow.models import Model

        run_path = Model.load(str(model_dir)).flavors["python_function"]["artifacts"][
            "run"]["path"]
        copied = model_dir / run_path
        # Hashes of the copy that is uploaded: the registry records them, out of the
        # artifact store's reach, so a later edit of any stored file is detected on load.
        manifest = RunFolder(copied).hashes()
        client.log_artifacts(run_id, str(stage))
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/model"
    return LoggedRun(run_id=run_id, source=source, run_path=run_path, manifest=manifest,
                     seconds=time.monotonic() - started)
