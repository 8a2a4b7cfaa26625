"""Data layer: sources, column kinds, profile, contract and fingerprint."""

from mlwright.data._base import DataSource, register_source
from mlwright.data.contract import Contract, ValidationResult, learn_contract, validate
from mlwright.data.kinds import ColumnKind, Task, infer_kind, infer_kinds, infer_task
from mlwright.data.sources import load, normalize_frame, resolve_source

__all__ = [
    "ColumnKind",
    "Contract",
    "DataSource",
    "Task",
    "ValidationResult",
    "infer_kind",
    "infer_kinds",
    "infer_task",
    "learn_contract",
    "load",
    "normalize_frame",
    "register_source",
    "resolve_source",
    "validate",
]
