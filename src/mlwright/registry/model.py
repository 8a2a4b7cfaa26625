"""A model ready to predict, loaded from a run folder whose files match their recorded hashes.

``TrainResult.save`` writes ``manifest.json`` (sha256 of every file it wrote). Nothing is
unpickled until the pickle's hash matches the manifest, or the hashes the registry recorded
when the version was registered (``expected``), which a tampered folder cannot change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.exceptions import IntegrityError, RegistryError

__all__ = ["MANIFEST", "LoadedModel", "file_sha256", "write_manifest"]

MANIFEST = "manifest.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> dict[str, str]:
    """Hash every file of ``folder`` (but the manifest) into ``manifest.json``."""
    hashes = {p.relative_to(folder).as_posix(): file_sha256(p)
              for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(hashes, indent=2, sort_keys=True))
    return hashes


def _verify(folder: Path, expected: dict[str, str]) -> None:
    for name, digest in expected.items():
        path = folder / name
        if not path.exists():
            raise IntegrityError(
                f"{path} is missing; the model was registered with it. Re-register the model "
                f"or restore the file.")
        actual = file_sha256(path)
        if actual != digest:
            raise IntegrityError(
                f"{path} does not match the hash recorded when it was saved (expected sha256 "
                f"{digest[:12]}…, found {actual[:12]}…); it was modified or corrupted, so it "
                f"will not be loaded. Restore it, or register the model again.")


@dataclass
class LoadedModel:
    """A fitted model with its contract and evidence, as serving and the loop use it."""

    model: Any                                   # search.ensemble.Ensemble (or any estimator)
    contract: Any                                # data.contract.Contract
    name: str = "model"
    version: str = "0"
    metrics: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    aliases: list[str] = field(default_factory=list)
    source: str = ""                             # the folder it was loaded from

    @property
    def task(self) -> str:
        return str(self.model.task)

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.model, "classes_", None)
        return None if classes is None else list(classes)

    @classmethod
    def from_folder(cls, folder: str | Path, *, expected: dict[str, str] | None = None,
                    **meta: Any) -> LoadedModel:
        """Load a run folder written by ``TrainResult.save``, hashes checked first."""
        import joblib

        from mlwright.data.contract import Contract

        folder = Path(folder)
        if not (folder / "model.joblib").exists():
            raise RegistryError(
                f"{folder} holds no model.joblib; expected a folder written by 'mlwright "
                f"train' (or a registered model version).")
        if expected is None:
            manifest = folder / MANIFEST
            if not manifest.exists():
                raise IntegrityError(
                    f"{manifest} is missing, so model.joblib cannot be verified and will not "
                    f"be loaded. Train again, or register the model.")
            expected = json.loads(manifest.read_text())
        if "model.joblib" not in expected:
            raise IntegrityError(f"No recorded hash for {folder / 'model.joblib'}.")
        _verify(folder, expected)
        model = joblib.load(folder / "model.joblib")
        contract = Contract.load(folder / "contract.json")
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        meta.setdefault("metrics", metrics)
        return cls(model=model, contract=contract, source=str(folder), **meta)
