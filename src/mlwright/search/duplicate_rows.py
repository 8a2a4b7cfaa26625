"""Duplicate rows learned once, with their count as their weight.

Large tables of a few categorical and small-integer columns repeat themselves: the 848 k
training rows of openintro's ``military`` hold 1,611 distinct (features, target) rows, the
191 k of AER's ``Fertility`` 12,800. A model fit on each distinct row, weighted by how often
it occurs, minimises the same weighted loss as a fit on every row (exactly for the linear
models; the boosters and forests count distinct rows in their minimum leaf sizes, and bag no
rows, see families/boosting.py), in a fraction of the time and memory: the search's default
LightGBM trial on military took 33 s on every row and 3.5 s on the distinct ones, whose
holdout log loss was 1.2313 against 1.2310.

:func:`group_rows` finds the distinct rows by hashing each column (pandas' hash, no sort)
and checks the grouping exactly before it is used, so a hash collision costs speed, never a
wrong row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["MIN_ROWS", "RowGroups", "group_rows", "no_bags_of_counts"]

#: Rows from which a fold's duplicates are looked for: below it a fit takes seconds at most,
#: and the boosters' minimum rows per leaf keeps its meaning (it counts distinct rows).
MIN_ROWS = 50_000
#: Grouped only when at most this share of the rows is distinct: fewer would not pay for
#: the hashing and the changed meaning of the boosters' minimum leaf size.
MAX_DISTINCT_SHARE = 0.5
#: Rows hashed first to see whether a table has duplicates at all (tables of continuous
#: columns have none, and give up after this many).
_PROBE_ROWS = 20_000


@dataclass(frozen=True)
class RowGroups:
    """Rows grouped by their values: ``first[g]`` is the first row of group ``g``, ``count[g]``
    its number of rows, ``of_row[i]`` row ``i``'s group."""

    first: np.ndarray
    count: np.ndarray
    of_row: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.first)

    def weights(self) -> np.ndarray:
        return self.count.astype(np.float64)

    def within(self, rows: np.ndarray) -> RowGroups | None:
        """The groups of the rows at positions ``rows`` (a fold's), numbered as they first
        appear there, or None when grouping those rows does not pay (as in
        :func:`group_rows`: fewer than MIN_ROWS rows, or over half of them distinct)."""
        if len(rows) == 0 or len(rows) < MIN_ROWS:
            return None
        codes, _ = pd.factorize(self.of_row[rows], sort=False)
        return _from_codes(np.asarray(codes), MAX_DISTINCT_SHARE)


def group_rows(X: object, y: np.ndarray, *, min_rows: int | None = None,
               max_share: float = MAX_DISTINCT_SHARE) -> RowGroups | None:
    """The groups of equal (``X`` row, ``y``) pairs, or None when grouping does not pay:
    fewer than ``min_rows`` rows (default :data:`MIN_ROWS`), sparse ``X`` (TF-IDF text,
    nearly always distinct), or more than ``max_share`` of the rows distinct."""
    n = len(y)
    if n == 0 or n < (MIN_ROWS if min_rows is None else min_rows) or sp.issparse(X):
        return None
    probe = min(n, _PROBE_ROWS)
    if len(pd.unique(_hash(_columns(X, y, probe)))) > max_share * probe:
        return None
    columns = _columns(X, y, n)
    codes, _ = pd.factorize(_hash(columns), sort=False)
    groups = _from_codes(np.asarray(codes), max_share)
    if groups is None:
        return None
    every = groups.first[groups.of_row]
    for col in columns:  # a 64-bit hash collision would merge two different rows
        a = col[every]
        same = (a == col) | (pd.isna(a) & pd.isna(col))
        if not bool(np.all(same)):
            return None
    return groups


def no_bags_of_counts(estimator: Any, sample_weight: np.ndarray | None) -> None:
    """No row bags for a fit on grouped duplicate rows (``sample_weight``: their counts).

    A bag of distinct rows drops whole groups, where a bag of the table's rows keeps nearly
    each group's share of its rows. On military's holdout, LightGBM's default on 80% bags of
    its 1,300 distinct rows lost 1.2355 against 1.2310 on every row; without bags, 1.2313.
    Boosters' ``subsample`` goes to 1 and forests' ``bootstrap`` off (their trees still
    differ by their features); CatBoost's Bayesian bootstrap is turned off in its wrapper.
    """
    if sample_weight is None:
        return
    params = estimator.get_params(deep=False)
    if "subsample" in params:
        estimator.set_params(subsample=1.0)
    if params.get("bootstrap"):
        estimator.set_params(bootstrap=False)


def _from_codes(codes: np.ndarray, max_share: float) -> RowGroups | None:
    """Groups from codes numbered as they first appear, unless more than ``max_share`` of
    the rows are distinct."""
    n_groups = int(codes.max()) + 1
    if n_groups > max_share * len(codes):
        return None
    # A group's first row is where the code exceeds every code before it.
    seen = np.maximum.accumulate(codes)
    first = np.flatnonzero(codes > np.concatenate([[-1], seen[:-1]]))
    return RowGroups(first=first, count=np.bincount(codes, minlength=n_groups),
                     of_row=codes.astype(np.intp))


def _columns(X: Any, y: np.ndarray, n: int) -> list[np.ndarray]:
    """The target and each column of ``X`` on the first ``n`` rows, as arrays to compare."""
    out = [np.asarray(y[:n])]
    if isinstance(X, pd.DataFrame):
        head = X.iloc[:n] if n < len(X) else X
        return out + [_comparable(head.iloc[:, j]) for j in range(head.shape[1])]
    return out + list(np.asarray(X[:n]).T)


def _comparable(col: pd.Series) -> np.ndarray:
    """A table's column as exact values without a Python object per cell (a million-row
    text column as objects is 60 MB): a typed column's codes (pandas' factorize is exact and
    gives every missing value one code), an object column as it is (its hash reads values as
    their text, as the preprocessing does: 1 and 1.0 differ)."""
    if col.dtype == object:
        return col.to_numpy()
    return np.asarray(pd.factorize(col, use_na_sentinel=True)[0])


def _hash(columns: list[np.ndarray]) -> np.ndarray:
    h = np.zeros(len(columns[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            h = h * np.uint64(0x100000001B3) ^ pd.util.hash_array(col, categorize=False)
    return h
