"""What every built-in source shares: the file extensions each one claims, path checks, and
the seeded row sample that makes a sample of one table the same rows in every format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.exceptions import ColumnNotFoundError, DataSourceError

_CSV_EXT = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zst", ".csv.bz2", ".csv.xz")
_PARQUET_EXT = (".parquet", ".pq", ".parq")
_JSONL_EXT = (".jsonl", ".ndjson", ".json", ".jsonl.gz")
_DUCKDB_EXT = (".duckdb", ".ddb")


def _path_of(location: Any) -> Path | None:
    if isinstance(location, os.PathLike):
        return Path(location)
    if isinstance(location, str) and location.startswith("file://"):
        return Path(location[len("file://"):])
    if isinstance(location, str) and "://" not in location:
        return Path(location)
    return None


def _check_file(path: Path) -> None:
    if not path.exists():
        near = sorted(p.name for p in path.parent.glob("*"))[:10] if path.parent.exists() else []
        hint = f" Files in {str(path.parent)!r}: {', '.join(near)}." if near else ""
        raise DataSourceError(
            f"No file at {str(path)!r}: expected a CSV, TSV, Parquet, JSON Lines or DuckDB file, "
            f"or a SQLAlchemy URL such as 'sqlite:///data.db'. Check the path.{hint}"
        )
    if path.is_dir():
        raise DataSourceError(
            f"{str(path)!r} is a folder, not a file: give the path of a file inside it (a "
            f"folder is read only when it holds Parquet parts)."
        )
    if not os.access(path, os.R_OK):
        raise DataSourceError(f"{str(path)!r} exists but cannot be read: check its permissions.")


def _sample_positions(n_rows: int, sample: int | None, seed: int) -> np.ndarray | None:
    """Sorted positions of ``sample`` rows drawn without replacement, or None for all rows.

    Every source that samples by position uses this, so that a sample of one table holds the
    same rows whether the table was stored as CSV, Parquet, JSON Lines or in SQL.
    """
    if sample is None or sample >= n_rows:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=sample, replace=False))


def _sample_rows(df: pd.DataFrame, sample: int | None, seed: int) -> pd.DataFrame:
    positions = _sample_positions(len(df), sample, seed)
    if positions is None:
        return df
    return df.iloc[positions].reset_index(drop=True)


def _require_columns(columns: list[str] | None, available: list[str]) -> None:
    for column in columns or ():
        if column not in available:
            raise ColumnNotFoundError(column, available)

