"""Checks on the target column, shared by profile, contract and training."""

from __future__ import annotations

import pandas as pd

from mlwright.data.kinds import Task, infer_task
from mlwright.exceptions import ColumnNotFoundError, TargetError

__all__ = ["check_target"]


def _plain(value: object) -> object:
    """numpy scalars as Python values, so messages say 1 rather than np.int64(1)."""
    return value.item() if hasattr(value, "item") else value


def check_target(df: pd.DataFrame, target: str, task: str | Task | None = None) -> Task:
    """Validate that ``target`` can be learned from ``df`` and return the task.

    Raises:
        ColumnNotFoundError: the column is not in ``df`` (with close-match suggestions).
        TargetError: the target is entirely missing, has a single value, or does not fit
            the requested ``task``.
    """
    if target not in df.columns:
        raise ColumnNotFoundError(target, df.columns, role="target column")
    y = df[target]
    n_missing = int(y.isna().sum())
    if n_missing == len(y):
        raise TargetError(
            f"The target column {target!r} is missing in all {len(y)} rows: expected values to "
            f"learn from. Check that the right column and file were given."
        )
    non_null = y.dropna()
    if non_null.nunique() < 2:
        raise TargetError(
            f"The target column {target!r} has a single value ({_plain(non_null.iloc[0])!r}) "
            f"in its {len(non_null)} non-missing rows: a model needs at least two classes or "
            f"distinct values. Check the filter or sample that produced this table."
        )
    inferred = infer_task(y)
    if task in (None, "auto"):
        return inferred
    try:
        wanted = Task(str(task))
    except ValueError:
        raise TargetError(
            f"Unknown task {task!r}: expected one of auto, "
            f"{', '.join(t.value for t in Task)}."
        ) from None
    if wanted is Task.REGRESSION and not pd.api.types.is_numeric_dtype(y.dtype):
        raise TargetError(
            f"task='regression' needs a numeric target, but {target!r} holds "
            f"{y.dtype} values such as {_plain(non_null.iloc[0])!r}. Use task='auto' or a numeric "
            f"column."
        )
    if wanted is Task.BINARY and non_null.nunique() != 2:
        raise TargetError(
            f"task='binary' needs exactly two classes, but {target!r} has "
            f"{non_null.nunique()}. Use task='multiclass' or 'auto'."
        )
    return wanted
