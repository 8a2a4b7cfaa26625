"""A model ready to predict, loaded from a run folder whose files match their recorded hashes.

``TrainResult.save`` writes ``manifest.json`` (sha256 of every file it wrote). Nothing is
unpickled until the pickle's hash matches the manifest, or the hashes the registry recorded
when the version was registered (``expected``), which a tampered folder cannot change; the
check itself is :meth:`mlwright.run.RunFolder.load_model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.run import RunFolder

__all__ = ["LoadedModel"]


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
        run = RunFolder(folder)
        model = run.load_model(expected=expected)
        contract = run.load_contract()
        meta.setdefault("metrics", run.read_metrics())
        return cls(model=model, contract=contract, source=str(run.path), **meta)
