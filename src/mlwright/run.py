"""A training's output: :class:`TrainResult`, and the run folder it is saved to.

The run folder is how a training reaches every later stage: the report is rebuilt from it,
the registry logs it, serving and the monitor load it. :class:`RunFolder` owns its file
names, writes and reads it, and keeps ``manifest.json`` (the sha256 of every file), which
is checked before anything is unpickled.

This module sits below every stage, so that each of them may use it: it imports only the
foundations at import time (no pandas, so the CLI and the server start fast), and the data
stage's ``Task`` and ``Contract`` when a folder is read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlwright.exceptions import IntegrityError, MlwrightError, RegistryError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlwright.data.contract import Contract
    from mlwright.data.kinds import Task

__all__ = ["RunFolder", "TrainResult", "file_sha256", "load_run"]


@dataclass
class TrainResult:
    """What ``mw.train`` returns: the fitted model and the evidence behind it."""

    model: Any  # the fitted search.ensemble.Ensemble (any estimator with predict)
    target: str
    task: Task
    metric: str  # the search's metric name
    cv_score: float
    cv_scores: list[float]
    leaderboard: pd.DataFrame
    oof: pd.DataFrame  # y, prediction or proba_<class>, in_validation: one row per row
    timings: dict[str, float]
    contract: Contract | None = None
    # The live search.engine.SearchResult (trials for the report and the registry); None
    # when the result was loaded from a folder.
    search: Any = field(default=None, repr=False)
    params: dict[str, Any] = field(default_factory=dict)  # train()'s arguments, row counts
    # Up to api.SAMPLE_ROWS validated training rows (all columns, target included), indexed
    # by their row in ``oof``: what the report needs to be rebuilt from the run folder.
    sample: pd.DataFrame | None = field(default=None, repr=False)
    # (seconds since start, best loss so far) after each trial: kept in metrics.json.
    history: list[tuple[float, float]] = field(default_factory=list, repr=False)
    folder: Path | None = None  # the run folder it was loaded from
    # Out of core (api.train_large): the rows held out of the refit, scored as its test
    # table by the report; not saved in the run folder.
    holdout: pd.DataFrame | None = field(default=None, repr=False)
    # --trim: what was dropped, the noise allowed, measured latency and size (Trim.to_dict).
    trim: dict[str, Any] | None = None
    # --distill: the teacher and the student side by side (evaluate.distill.side_by_side).
    distill: dict[str, Any] | None = None
    # --max-latency-ms / --max-size-mb: candidates left out, members dropped, the measured
    # figures before and after, and the shipped model's (search.limits.Limited.to_dict).
    limits: dict[str, Any] | None = None
    # Models kept beside the shipped one, by name: "student" (--distill) or "teacher"
    # (--distill ship); saved as <name>.joblib.
    alternates: dict[str, Any] = field(default_factory=dict, repr=False)

    def predict(self, X: Any) -> np.ndarray:
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.model.predict_proba(X)

    def save(self, folder: str | Path) -> Path:
        """Write the run folder (see :class:`RunFolder`) into ``folder``."""
        return RunFolder(folder).save(self)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class RunFolder:
    """The files of one training, by name, in ``path``.

    ``save`` writes the training files and then ``manifest.json``; the report files are
    added by ``Evaluation.write`` (``mlwright report`` rewrites them, so the manifest does
    not cover them; the registry hashes every file of the copy it logs).
    """

    MODEL: ClassVar[str] = "model.joblib"
    CONTRACT: ClassVar[str] = "contract.json"
    OOF: ClassVar[str] = "oof.parquet"
    SAMPLE: ClassVar[str] = "sample.parquet"
    LEADERBOARD: ClassVar[str] = "leaderboard.csv"
    METRICS: ClassVar[str] = "metrics.json"
    REPORT: ClassVar[str] = "report.html"
    MODEL_CARD: ClassVar[str] = "model_card.md"
    EVALUATION: ClassVar[str] = "evaluation.json"
    MANIFEST: ClassVar[str] = "manifest.json"
    #: ``<name>.joblib`` for a model kept beside the shipped one (see TrainResult.alternates).
    ALTERNATES: ClassVar[tuple[str, ...]] = ("student", "teacher")
    # What save() writes (SAMPLE and CONTRACT when the result has them), and Evaluation.write.
    TRAINING_FILES: ClassVar[tuple[str, ...]] = (MODEL, LEADERBOARD, OOF, SAMPLE, METRICS,
                                                 CONTRACT)
    REPORT_FILES: ClassVar[tuple[str, ...]] = (REPORT, MODEL_CARD, EVALUATION)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def require(self, *names: str) -> None:
        """Raise, naming the first missing file, unless every one of ``names`` exists."""
        for name in names:
            if not self.has(name):
                raise MlwrightError(
                    f"{self.file(name)} is missing; a run is loaded from the files 'mlwright "
                    f"train' writes. Train again to recreate the run folder.")

    # ---------------------------------------------------------------------------- writing

    def save(self, result: TrainResult) -> Path:
        """Write the model, leaderboard, out-of-fold predictions, sample of training rows,
        metrics and contract, then the manifest (their sha256 hashes)."""
        import joblib

        self.path.mkdir(parents=True, exist_ok=True)
        joblib.dump(result.model, self.file(self.MODEL), compress=3)
        result.leaderboard.to_csv(self.file(self.LEADERBOARD), index=False)
        result.oof.to_parquet(self.file(self.OOF), index=False)
        if result.sample is not None:
            _write_sample(result.sample, self.file(self.SAMPLE))
        metrics = {"target": result.target, "task": result.task.value,
                   "metric": result.metric, "cv_score": result.cv_score,
                   "cv_scores": result.cv_scores, "timings": result.timings,
                   "params": result.params, "history": [list(h) for h in result.history]}
        # Only when asked for: default files stay as they were.
        for key in ("trim", "distill", "limits"):
            if getattr(result, key) is not None:
                metrics[key] = getattr(result, key)
        for name, other in result.alternates.items():
            if name not in self.ALTERNATES:
                raise MlwrightError(f"Unknown alternate model {name!r}; expected one of "
                                    f"{self.ALTERNATES}.")
            joblib.dump(other, self.file(f"{name}.joblib"), compress=3)
        self.file(self.METRICS).write_text(json.dumps(metrics, indent=2, default=str))
        if result.contract is not None and hasattr(result.contract, "save"):
            result.contract.save(self.file(self.CONTRACT))
        self.write_manifest()  # last: sha256 of every file, checked before unpickling
        return self.path

    # ---------------------------------------------------------------------------- hashes

    def hashes(self) -> dict[str, str]:
        """The sha256 of every file under the folder but the manifest, by relative path."""
        return {p.relative_to(self.path).as_posix(): file_sha256(p)
                for p in sorted(self.path.rglob("*"))
                if p.is_file() and p.name != self.MANIFEST}

    def write_manifest(self) -> dict[str, str]:
        hashes = self.hashes()
        self.file(self.MANIFEST).write_text(json.dumps(hashes, indent=2, sort_keys=True))
        return hashes

    def read_manifest(self) -> dict[str, str]:
        path = self.file(self.MANIFEST)
        if not path.exists():
            raise IntegrityError(
                f"{path} is missing, so {self.MODEL} cannot be verified and will not be "
                f"loaded. Train again, or register the model.")
        return dict(json.loads(path.read_text()))

    def verify(self, expected: dict[str, str] | None = None) -> None:
        """Check every file against ``expected`` (default: the folder's manifest); raise
        :class:`IntegrityError` naming the first file that is missing or differs."""
        if expected is None:
            expected = self.read_manifest()
        for name, digest in expected.items():
            path = self.file(name)
            if not path.exists():
                raise IntegrityError(
                    f"{path} is missing; the model was registered with it. Re-register the "
                    f"model or restore the file.")
            actual = file_sha256(path)
            if actual != digest:
                raise IntegrityError(
                    f"{path} does not match the hash recorded when it was saved (expected "
                    f"sha256 {digest[:12]}…, found {actual[:12]}…); it was modified or "
                    f"corrupted, so it will not be loaded. Restore it, or register the model "
                    f"again.")

    # ---------------------------------------------------------------------------- reading

    def load_model(self, *, expected: dict[str, str] | None = None) -> Any:
        """The fitted model, unpickled only after every file matches ``expected`` (the
        hashes the registry recorded) or, without it, the folder's manifest."""
        import joblib

        if not self.has(self.MODEL):
            raise RegistryError(
                f"{self.path} holds no {self.MODEL}; expected a folder written by 'mlwright "
                f"train' (or a registered model version).")
        if expected is None:
            expected = self.read_manifest()
        if self.MODEL not in expected:
            raise IntegrityError(f"No recorded hash for {self.file(self.MODEL)}.")
        self.verify(expected)
        return joblib.load(self.file(self.MODEL))

    def load_alternate(self, name: str) -> Any:
        """The model kept beside the shipped one (``student`` after ``--distill``,
        ``teacher`` after ``--distill ship``), unpickled after the manifest check."""
        import joblib

        path = self.file(f"{name}.joblib")
        if name not in self.ALTERNATES or not path.exists():
            kept = [n for n in self.ALTERNATES if self.has(f"{n}.joblib")]
            raise MlwrightError(
                f"{self.path} holds no {name}.joblib (it holds: {kept or 'none'}); a student "
                f"is trained by 'mlwright train --distill'.")
        expected = self.read_manifest()
        if path.name not in expected:
            raise IntegrityError(f"No recorded hash for {path}.")
        self.verify(expected)
        return joblib.load(path)

    def load_contract(self) -> Contract:
        from mlwright.data.contract import Contract

        return Contract.load(self.file(self.CONTRACT))

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json (target, task, metric, CV scores, timings, params, history); {}
        when the folder has none."""
        path = self.file(self.METRICS)
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def read_oof(self) -> pd.DataFrame | None:
        import pandas as pd

        return pd.read_parquet(self.file(self.OOF)) if self.has(self.OOF) else None

    def read_sample(self) -> pd.DataFrame | None:
        import pandas as pd

        return pd.read_parquet(self.file(self.SAMPLE)) if self.has(self.SAMPLE) else None

    def load(self, *, model: bool = True) -> TrainResult:
        """The :class:`TrainResult` saved here (hashes checked before the model is
        unpickled); ``search`` is None, the search history is kept. ``model=False``: the
        evidence without unpickling the model (``model`` is None), for registering it."""
        import pandas as pd

        from mlwright.data.kinds import Task

        fitted = self.load_model() if model else None
        contract = self.load_contract()
        self.require(self.OOF, self.METRICS, self.LEADERBOARD)
        meta = self.read_metrics()
        return TrainResult(
            model=fitted, target=meta["target"], task=Task(meta["task"]),
            metric=meta["metric"], cv_score=meta["cv_score"], cv_scores=meta["cv_scores"],
            leaderboard=pd.read_csv(self.file(self.LEADERBOARD)),
            oof=pd.read_parquet(self.file(self.OOF)),
            timings=meta.get("timings", {}), contract=contract,
            params=meta.get("params", {}), sample=self.read_sample(),
            history=[(float(a), float(b)) for a, b in meta.get("history", [])],
            folder=self.path, trim=meta.get("trim"), distill=meta.get("distill"),
            limits=meta.get("limits"))


def load_run(folder: str | Path) -> TrainResult:
    """A :class:`TrainResult` rebuilt from a run folder: ``RunFolder(folder).load()``."""
    return RunFolder(folder).load()


def _write_sample(sample: pd.DataFrame, path: Path) -> None:
    try:
        sample.to_parquet(path, index=True)
    except (TypeError, ValueError, ArithmeticError):  # mixed-type object columns
        fixed = sample.copy()
        for col in fixed.select_dtypes(include="object").columns:
            fixed[col] = fixed[col].map(lambda v: v if v is None or v != v else str(v))
        fixed.to_parquet(path, index=True)
