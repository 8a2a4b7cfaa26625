"""How the search measures a configuration: the train/validation splits.

``auto`` uses stratified 5-fold CV on tables up to 15,000 rows and a stratified 20% holdout
above (k-fold on large tables would spend the budget on refits instead of on search).
``groups`` keeps each group on one side; ``time`` orders rows by a column and validates on
the future only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from mlwright._logging import get_logger
from mlwright.data.kinds import Task
from mlwright.exceptions import ConfigError, TargetError

__all__ = ["MIN_CLASS_ROWS", "Splits", "make_splits", "rare_class_rows"]

log = get_logger(__name__)

AUTO_KFOLD_MAX_ROWS = 15_000
#: Rows a class needs: one to learn from and one to validate on. A class with a single row
#: is, in some split, only in the validation part, where every model fails on a label it
#: never saw (LightGBM: "y contains previously unseen labels").
MIN_CLASS_ROWS = 2


def rare_class_rows(y: pd.Series, task: Task, *, target: str = "target") -> np.ndarray:
    """Which rows to keep: all but those of classes with fewer than MIN_CLASS_ROWS rows.

    As AutoGluon drops rare classes, the classes are dropped with a warning that names them
    (one row cannot be validated on, and is often a data error: a shifted CSV line, a typo).
    Raises TargetError when fewer than two classes would be left.
    """
    keep = np.ones(len(y), dtype=bool)
    if task is Task.REGRESSION:
        return keep
    counts = y.value_counts(dropna=True)
    rare = counts[counts < MIN_CLASS_ROWS]
    if rare.empty:
        return keep
    shown = ", ".join(f"{_plain(c)!r} ({n} row{'s' if n != 1 else ''})"
                      for c, n in rare.head(10).items())
    if len(rare) > 10:
        shown += f" and {len(rare) - 10} more"
    if len(counts) - len(rare) < 2:
        raise TargetError(
            f"The target column {target!r} needs at least {MIN_CLASS_ROWS} rows of each of two "
            f"classes; these classes have fewer: {shown}. Collect more rows of them, or merge "
            f"each into a similar class."
        )
    log.warning("Dropped %d row(s) of %d target class(es) with fewer than %d rows, which "
                "cannot be both learned and validated: %s. The model will not predict them; "
                "to keep one, collect more rows of it or merge it into a similar class.",
                int(rare.sum()), len(rare), MIN_CLASS_ROWS, shown)
    return ~y.isin(rare.index).to_numpy()


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so messages say 1 rather than np.int64(1)."""
    return value.item() if hasattr(value, "item") else value


@dataclass(frozen=True)
class Splits:
    folds: list[tuple[np.ndarray, np.ndarray]]
    kind: str  # "kfold", "holdout", "group", "time"

    @property
    def n_folds(self) -> int:
        return len(self.folds)

    def covered(self, n_rows: int) -> np.ndarray:
        """Rows that have an out-of-fold prediction (all of them except with ``time``)."""
        mask = np.zeros(n_rows, dtype=bool)
        for _, val in self.folds:
            mask[val] = True
        return mask


def make_splits(y: np.ndarray, task: Task, *, cv: int | str = "auto",
                groups: pd.Series | np.ndarray | None = None,
                time: pd.Series | np.ndarray | None = None, seed: int = 0) -> Splits:
    n = len(y)
    stratify = task is not Task.REGRESSION
    if time is not None:
        k = cv if isinstance(cv, int) else 5
        order = np.argsort(np.asarray(pd.Series(time).rank(method="first")), kind="stable")
        folds = [(order[tr], order[va]) for tr, va in TimeSeriesSplit(n_splits=k).split(order)]
        return Splits(folds, "time")
    if groups is not None:
        k = cv if isinstance(cv, int) else 5
        groups = np.asarray(groups)
        if len(np.unique(groups)) < k:
            raise ConfigError(
                f"Group-aware CV needs at least {k} distinct groups, found "
                f"{len(np.unique(groups))}. Use fewer folds (--cv) or another --groups column."
            )
        splitter = (StratifiedGroupKFold(k, shuffle=True, random_state=seed) if stratify
                    else GroupKFold(k))
        return Splits(list(splitter.split(np.zeros(n), y, groups)), "group")
    min_class = int(np.bincount(y).min()) if stratify else n
    if cv == "holdout" or (cv == "auto" and n > AUTO_KFOLD_MAX_ROWS):
        idx = np.arange(n)
        # A class with a single row cannot be split; the others are still stratified upon.
        tr, va = train_test_split(idx, test_size=0.2, random_state=seed,
                                  stratify=y if stratify and min_class >= 2 else None)
        return Splits([(np.sort(tr), np.sort(va))], "holdout")
    k = 5 if cv == "auto" else int(cv)
    if k < 2:
        raise ConfigError(f"cv must be at least 2 folds, 'holdout' or 'auto'; got {cv!r}.")
    if stratify:
        if int(np.bincount(y).max()) < k:
            raise ConfigError(
                f"Every class has fewer rows than the {k} CV folds. Use fewer folds "
                f"(cv=2) or collect more rows."
            )
        # Classes rarer than k rows are simply absent from some folds (their probability
        # columns are then zero there); the common classes stay stratified.
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(k, shuffle=True, random_state=seed)
    return Splits(list(splitter.split(np.zeros(n), y)), "kfold")
