"""A Parquet dataset too large to load: its files (a folder or a glob), its row-group pieces
with the dataset's row numbers, a seeded draw per row, and exact column aggregates over
every row computed out of core by DuckDB.

Rows are numbered in file order (paths sorted), then row order, from the Parquet footers,
before anything is read. Each row draws one number in [0, 1) from a hash of its row number
and the seed (:func:`row_draw`), so "the holdout", "the sample" and "the refit rows" are
ranges of that draw: the same rows on every host and every run, whatever reads them
(the client, a Dask worker) and in whatever order.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.data.profile.columns import _splitmix
from mlwright.exceptions import ColumnNotFoundError, DataSourceError

__all__ = ["Aggregate", "ParquetDataset", "Piece", "is_parquet_dataset",
           "larger_than_memory", "open_parquet_dataset", "row_draw", "sample_of"]

log = get_logger(__name__)

#: Rows per piece (whole row groups): a worker's partition, and the client's read unit.
PIECE_ROWS = 100_000
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Piece:
    """Row groups of one Parquet file, and the dataset's row number of their first row."""

    path: str
    row_groups: tuple[int, ...]
    first: int
    rows: int


@dataclass
class ParquetDataset:
    spec: str  # the folder or glob as given
    files: list[str]
    columns: list[str]
    pieces: list[Piece]
    n_rows: int
    #: Uncompressed bytes of the column chunks (Parquet footers): a lower bound of the
    #: in-memory size (pandas' object strings take several times more).
    uncompressed_bytes: int

    def read(self, piece: Piece, columns: list[str] | None = None) -> pd.DataFrame:
        """One piece as :func:`mlwright.load` types it, indexed by the dataset's row numbers."""
        import pyarrow.parquet as pq

        from mlwright.data.sources import normalize_frame

        try:
            table = pq.ParquetFile(piece.path).read_row_groups(list(piece.row_groups),
                                                               columns=columns)
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise DataSourceError(f"Could not read row groups {list(piece.row_groups)} of "
                                  f"{piece.path!r} ({exc}).") from exc
        frame = normalize_frame(table.to_pandas(split_blocks=True, self_destruct=True))
        frame.index = pd.RangeIndex(piece.first, piece.first + len(frame))
        return frame

    def scan(self, seed: int, ranges: dict[str, tuple[float, float]], *,
             progress: Callable[[int, int], None] | None = None
             ) -> tuple[dict[str, pd.DataFrame], str]:
        """One pass over every row, piece by piece: for each of ``ranges`` the rows whose
        draw is in [low, high), and the dataset's fingerprint (the same as
        :func:`mlwright.data.fingerprint.fingerprint` of the whole table). Memory holds one
        piece, the rows kept and 8 bytes per row."""
        from mlwright.data.fingerprint import fingerprint_rows, row_hashes

        kept: dict[str, list[pd.DataFrame]] = {k: [] for k in ranges}
        hashes: list[np.ndarray] = []
        names: list[str] = []
        empty = None
        for i, piece in enumerate(self.pieces):
            frame = self.read(piece, self.columns)
            rows, names = row_hashes(frame)
            hashes.append(rows)
            u = row_draw(piece.first, piece.rows, seed)
            for key, (low, high) in ranges.items():
                keep = (u >= low) & (u < high)
                if keep.any():
                    kept[key].append(frame[keep])
            empty = frame.iloc[:0]
            if progress is not None:
                progress(i + 1, len(self.pieces))
        out = {k: pd.concat(v) if v else empty for k, v in kept.items()}
        return out, fingerprint_rows(np.concatenate(hashes), names)

    def memory_estimate(self) -> int:
        """Bytes the whole table would take in pandas, from its first piece (deep memory
        per row x rows): the footers' sizes say little once text is dictionary-encoded (a
        resampled Fertility takes 190x its compressed size in memory)."""
        first = self.read(self.pieces[0])
        per_row = first.memory_usage(deep=True, index=False).sum() / max(1, len(first))
        return int(per_row * self.n_rows)

    def sql_source(self) -> str:
        """The dataset as a DuckDB table expression."""
        files = ", ".join("'" + f.replace("'", "''") + "'" for f in self.files)
        return f"read_parquet([{files}])"


def row_draw(first: int, n: int, seed: int) -> np.ndarray:
    """A number in [0, 1) for each of the rows ``first .. first + n - 1``: splitmix64 of the
    row number and the seed, so any reader draws the same number for the same row."""
    rows = np.arange(first, first + n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = _splitmix(rows * np.uint64(0x9E3779B97F4A7C15)
                          + np.uint64(seed & 0xFFFFFFFF) + np.uint64(1))
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _files(spec: str) -> list[str]:
    path = Path(spec)
    if any(c in spec for c in _GLOB_CHARS):
        return sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*.parquet") if p.is_file())
    if path.is_file():
        return [str(path)]
    return []


def is_parquet_dataset(spec: Any) -> bool:
    """Whether ``spec`` names Parquet files: a ``.parquet`` file, a folder holding some, or
    a glob matching some."""
    if not isinstance(spec, str | Path):
        return False
    files = _files(str(spec))
    return bool(files) and all(f.lower().endswith((".parquet", ".pq")) for f in files)


def larger_than_memory(spec: Any, share: float = 0.25) -> bool:
    """Whether ``spec`` is a Parquet dataset that would take more than ``share`` of this
    machine's memory once read (:meth:`ParquetDataset.memory_estimate`): the commands then
    work on it out of core."""
    import os

    if not isinstance(spec, str | Path) or "://" in str(spec) or not is_parquet_dataset(spec):
        return False
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return open_parquet_dataset(spec).memory_estimate() > memory * share


def sample_of(dataset: ParquetDataset, rows: int, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """About ``rows`` rows drawn at random (seeded) and the dataset's fingerprint, in one
    pass (:meth:`ParquetDataset.scan`)."""
    kept, fingerprint = dataset.scan(seed, {"sample": (0.0, min(1.0, rows / dataset.n_rows))})
    return kept["sample"].reset_index(drop=True), fingerprint


def open_parquet_dataset(spec: str | Path, *, target: str | None = None,
                         piece_rows: int = PIECE_ROWS) -> ParquetDataset:
    """The dataset's files, pieces and row count from their footers (nothing else is read).

    Raises:
        DataSourceError: no Parquet file, an unreadable footer, or a file whose columns
            differ from the first file's (naming the file and the columns).
        ColumnNotFoundError: ``target`` is not a column (naming the first file without it).
    """
    import pyarrow.parquet as pq

    spec = str(spec)
    files = _files(spec)
    if not files:
        raise DataSourceError(
            f"No Parquet file at {spec!r}: give a .parquet file, a folder of them, or a glob "
            f"such as 'data/part-*.parquet'.")
    columns: list[str] | None = None
    pieces: list[Piece] = []
    first = size = 0
    for file in files:
        try:
            meta = pq.ParquetFile(file).metadata
        except Exception as exc:
            raise DataSourceError(f"Could not read the Parquet footer of {file!r} ({exc}). "
                                  f"Is it a complete Parquet file?") from exc
        names = [str(n) for n in meta.schema.to_arrow_schema().names]
        if target is not None and target not in names:
            error = ColumnNotFoundError(target, names, role="target column")
            error.args = (f"{file}: {error} Every file of the dataset {spec!r} needs the "
                          f"target; remove the file or add the column.",)
            raise error
        if columns is None:
            columns = names
        elif set(names) != set(columns):
            missing = [c for c in columns if c not in names]
            extra = [c for c in names if c not in columns]
            raise DataSourceError(
                f"{file} does not have the columns of {files[0]}: "
                + "; ".join(x for x in (f"missing {missing}" if missing else "",
                                        f"extra {extra}" if extra else "") if x)
                + f". Every file of the dataset {spec!r} needs the same columns.")
        group: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            size += rg.total_byte_size
            group.append(g)
            rows += rg.num_rows
            if rows >= piece_rows or g == meta.num_row_groups - 1:
                if rows:
                    pieces.append(Piece(file, tuple(group), first, rows))
                first += rows
                group, rows = [], 0
    assert columns is not None
    if first == 0:
        raise DataSourceError(f"The Parquet dataset {spec!r} has no rows.")
    return ParquetDataset(spec, files, columns, pieces, first, size)


# -- exact aggregates over every row (DuckDB, out of core) ------------------------------------

@dataclass
class Aggregate:
    """One column's exact figures over every row of a dataset."""

    rows: int
    count: int  # non-missing values
    distinct: int
    #: (value, count), most common first; every value when ``complete``.
    values: list[tuple[Any, int]] = field(default_factory=list)
    complete: bool = False
    #: Numbers: over finite values (min, max, mean, std with ddof=1, quantiles at the asked
    #: probabilities by linear interpolation, as numpy's), and counts.
    finite: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[float, float] = field(default_factory=dict)
    zeros: int = 0
    negatives: int = 0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cast(name: str, as_type: str) -> str:
    if as_type == "number":
        return f"TRY_CAST({_q(name)} AS DOUBLE)"
    if as_type == "boolean":
        return f"TRY_CAST({_q(name)} AS BOOLEAN)"
    if as_type == "string":
        return f"CAST({_q(name)} AS VARCHAR)"
    return _q(name)


def _missing(expr: str, as_type: str) -> str:
    # pandas counts NaN as missing; Parquet keeps NaN apart from NULL.
    return f"({expr} IS NULL OR isnan({expr}))" if as_type == "number" else f"({expr} IS NULL)"


def aggregate(dataset: ParquetDataset, types: dict[str, str], *,
              values: dict[str, int | None], probs: tuple[float, ...] = ()
              ) -> dict[str, Aggregate]:
    """Exact figures of each column of ``types`` (``number``, ``boolean``, ``string`` or
    ``other``: how its values are read) over every row, with DuckDB streaming the files.

    ``values``: columns whose value counts are wanted, each with how many of the most common
    (None: all). ``probs``: quantiles of number columns.
    """
    import duckdb

    src = dataset.sql_source()
    out: dict[str, Aggregate] = {}
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = false")
        for name, as_type in types.items():
            x = _cast(name, as_type)
            miss = _missing(x, as_type)
            exprs = ["count(*)", f"count(*) FILTER (WHERE NOT {miss})",
                     f"count(DISTINCT {x}) FILTER (WHERE NOT {miss})"]
            if as_type == "number":
                fin = f"FILTER (WHERE isfinite({x}))"
                exprs += [f"count(*) {fin}", f"min({x}) {fin}", f"max({x}) {fin}",
                          f"avg({x}) {fin}", f"stddev_samp({x}) {fin}",
                          f"count(*) FILTER (WHERE {x} = 0)",
                          f"count(*) FILTER (WHERE isfinite({x}) AND {x} < 0)"]
                exprs += [f"quantile_cont({x}, {float(p)!r}) {fin}" for p in probs]
            row = con.execute(f"SELECT {', '.join(exprs)} FROM {src}").fetchone()
            assert row is not None
            agg = Aggregate(rows=int(row[0]), count=int(row[1]), distinct=int(row[2]))
            if as_type == "number":
                agg.finite = int(row[3])
                if agg.finite:
                    agg.min, agg.max, agg.mean = float(row[4]), float(row[5]), float(row[6])
                    agg.std = float(row[7]) if row[7] is not None else 0.0
                    agg.quantiles = {p: float(v) for p, v in zip(probs, row[10:], strict=True)}
                agg.zeros, agg.negatives = int(row[8]), int(row[9])
            if name in values:
                limit = values[name]
                agg.complete = limit is None or agg.distinct <= limit
                sql = (f"SELECT {x} AS v, count(*) AS n FROM {src} WHERE NOT {miss} "
                       f"GROUP BY v ORDER BY n DESC, v"
                       + ("" if agg.complete else f" LIMIT {limit}"))
                agg.values = [(v, int(n)) for v, n in con.execute(sql).fetchall()]
            out[name] = agg
    finally:
        con.close()
    return out


def histogram(dataset: ParquetDataset, name: str, edges: list[float]) -> list[int]:
    """Counts of a number column's finite values in the bins of ``edges``, as
    ``numpy.histogram`` counts them (each bin half-open, the last one closed)."""
    import duckdb

    x = _cast(name, "number")
    last = len(edges) - 2
    lit = [f"CAST('{float(e)!r}' AS DOUBLE)" for e in edges]
    exprs = [f"count(*) FILTER (WHERE {x} >= {lit[i]} AND {x} "
             f"{'<=' if i == last else '<'} {lit[i + 1]})" for i in range(len(edges) - 1)]
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT {', '.join(exprs)} FROM {dataset.sql_source()}").fetchone()
    finally:
        con.close()
    assert row is not None
    return [int(c) for c in row]
