"""profile(): every column's statistics, the warnings, and the target's facts, in one
Profile."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd

from mlwright._logging import get_logger
from mlwright.data.kinds import Task
from mlwright.data.leakage import SAMPLE_ROWS as LEAKAGE_SAMPLE
from mlwright.data.leakage import LeakageScore, score_features
from mlwright.data.profile.checks import (
    PII_SAMPLE,
    _column_warnings,
    _leakage_row,
    _leakage_warning,
)
from mlwright.data.profile.columns import (
    TEXT_SAMPLE,
    _duplicate_rows,
    _memory_bytes,
    _profile_column,
    _target_distribution,
)
from mlwright.data.profile.result import _SEVERITY_ORDER, Profile, ProfileWarning, Severity
from mlwright.data.target import check_target
from mlwright.exceptions import ConfigError, EmptyDataError

__all__ = ["profile"]

log = get_logger(__name__)

IMBALANCE_RATIO = 10.0


def profile(df: pd.DataFrame, target: str | None = None, *, task: str | Task | None = None,
            seed: int = 0) -> Profile:
    """Profile ``df``; with ``target``, also the task, the target's distribution and leakage.

    Raises:
        ColumnNotFoundError: ``target`` is not a column of ``df``.
        TargetError: the target is all missing, has a single value, or does not fit ``task``.
        EmptyDataError: ``df`` has no rows or no columns.
    """
    started = time.perf_counter()
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"profile() expects a pandas DataFrame, got {type(df).__name__}; "
                          f"read files with mlwright.load(path) first.")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise EmptyDataError(f"Cannot profile an empty table ({df.shape[0]} rows, "
                             f"{df.shape[1]} columns): expected at least one row and column.")
    if not df.columns.is_unique:
        dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ConfigError(f"Column names must be unique to profile a table; repeated: {dupes}. "
                          f"Rename them first.")
    df = df.rename(columns=str) if not all(isinstance(c, str) for c in df.columns) else df
    resolved_task = check_target(df, target, task) if target is not None else None

    profiled = [_profile_column(df[name], is_target=name == target) for name in df.columns]
    columns = [column for column, _ in profiled]
    kinds = {c.name: c.kind for c in columns}
    warnings: list[ProfileWarning] = []
    for column in columns:
        warnings.extend(_column_warnings(column, df[column.name], n_rows=len(df), seed=seed))

    leakage: list[LeakageScore] = []
    distribution = imbalance = None
    if target is not None and resolved_task is not None:
        distribution, imbalance = _target_distribution(df[target], resolved_task)
        leakage = score_features(df, target, resolved_task, kinds, seed=seed)
        warnings.extend(_leakage_warning(s, target) for s in leakage if s.verdict is not None)
        if imbalance is not None and imbalance >= IMBALANCE_RATIO:
            warnings.append(ProfileWarning(
                "class_imbalance", target,
                f"The target {target!r} is imbalanced: the largest class has {imbalance:.0f} times "
                f"the rows of the smallest. Accuracy will mislead; judge models by ROC AUC, log "
                f"loss or per-class recall.", Severity.INFO, {"ratio": imbalance}))
    duplicates = _duplicate_rows([key for _, key in profiled])
    if duplicates:
        warnings.append(ProfileWarning(
            "duplicate_rows", None,
            f"{duplicates:,} rows ({duplicates / len(df):.1%}) repeat an earlier row exactly. "
            f"Duplicates can straddle the train/test split and flatter the scores.",
            Severity.INFO, {"rows": duplicates}))
    warnings.sort(key=lambda w: _SEVERITY_ORDER[w.severity])

    missing_cells = int(sum(c.missing for c in columns))
    elapsed = time.perf_counter() - started
    log.info("profiled %d rows x %d columns in %.2fs", len(df), df.shape[1], elapsed)
    from mlwright import __version__

    return Profile(
        n_rows=len(df), n_columns=df.shape[1], duplicate_rows=duplicates,
        memory_bytes=_memory_bytes(df),
        missing_cells=missing_cells, columns=columns, warnings=warnings, target=target,
        task=resolved_task, target_distribution=distribution, imbalance_ratio=imbalance,
        leakage=[_leakage_row(s) for s in leakage],
        meta={"mlwright_version": __version__, "seed": seed,
              "created": datetime.now(UTC).isoformat(timespec="seconds"),
              "elapsed_s": round(elapsed, 3),
              "samples": {"leakage_rows": min(LEAKAGE_SAMPLE, len(df)),
                          "pii_values": PII_SAMPLE, "text_values": TEXT_SAMPLE}},
    )
