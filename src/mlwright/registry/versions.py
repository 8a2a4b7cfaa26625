"""What a registered version is called and what it says of itself: references
(``name@alias``, ``name/3``), the mlwright tags on a version, and :class:`ModelVersionInfo`,
the record ``list`` and ``show`` report. MLflow's client is not needed here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlwright.exceptions import RegistryError

__all__ = ["CHALLENGER", "CHAMPION", "ModelVersionInfo", "parse_ref"]

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_MANIFEST = "mlwright.manifest"
TAG_RUN_PATH = "mlwright.run_path"
TAG_COMPLETE = "mlwright.complete"
TAG_HISTORY = "mlwright.champion_history"   # registered-model tag: earlier champions, JSON


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``name@alias`` -> (name, None, alias); ``name/3`` -> (name, "3", None); ``name`` ->
    (name, None, "champion"). A ``models:/`` prefix is accepted."""
    text = ref.strip().removeprefix("models:/")
    if not text:
        raise RegistryError("Empty model reference; expected NAME, NAME@ALIAS or NAME/VERSION "
                            "(e.g. churn@champion or churn/3).")
    if "@" in text:
        name, alias = text.rsplit("@", 1)
        if not name or not alias:
            raise RegistryError(f"Model reference {ref!r} is malformed; expected NAME@ALIAS "
                                f"(e.g. churn@champion).")
        return name, None, alias
    if "/" in text:
        name, version = text.rsplit("/", 1)
        if version.isdigit() and name:
            return name, version, None
    return text, None, CHAMPION


def _mlflow_error(exc: Exception, what: str) -> RegistryError:
    message = getattr(exc, "message", None) or str(exc)
    return RegistryError(f"{what}: {message}")


@dataclass
class ModelVersionInfo:
    """One registered version, as ``list``/``show`` report it."""

    name: str
    version: str
    run_id: str | None
    aliases: list[str] = field(default_factory=list)
    created: float = 0.0                        # unix seconds
    status: str = "ready"                       # ready | incomplete
    task: str | None = None
    metric: str | None = None
    cv_score: float | None = None
    data_fingerprint: str | None = None
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = {k: v for k, v in self.tags.items() if k != TAG_MANIFEST}
        return data


def _info(mv: Any) -> ModelVersionInfo:
    tags = dict(mv.tags or {})
    complete = TAG_MANIFEST in tags and tags.get(TAG_COMPLETE) == "true" and str(
        getattr(mv, "status", "READY")) in ("READY", "ModelVersionStatus.READY", "1")
    score = tags.get("mlwright.cv_score")
    return ModelVersionInfo(
        name=mv.name, version=str(mv.version), run_id=mv.run_id,
        aliases=sorted(getattr(mv, "aliases", []) or []),
        created=(mv.creation_timestamp or 0) / 1000, status="ready" if complete else
        "incomplete", task=tags.get("mlwright.task"), metric=tags.get("mlwright.metric"),
        cv_score=float(score) if score not in (None, "") else None,
        data_fingerprint=tags.get("mlwright.data_fingerprint") or None,
        source=mv.source or "", tags=tags)
