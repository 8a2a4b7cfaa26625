"""A Parquet dataset scored on a Dask cluster, partition by partition:
:func:`score_dataset` (``mlwright predict MODEL DATA -o OUT --cluster ADDRESS``).

The partitions are a ``dask.dataframe`` built with ``from_map`` over pieces of the
dataset: each file's row groups, grouped into pieces of about ``chunk_rows`` rows, in the
order the in-process scorer reads them. A piece's row numbers are known from the Parquet
footers before anything is read, so each partition carries DATA's own row numbers as its
index: the checks name the same rows and the ``row`` keys are the same as
``serve.batchfile.score_file``'s. Each partition is checked against the contract and
predicted by the same compiled predictor (built once per worker from the model, one task
of the graph), and written by its worker as one part file of a Parquet dataset. OUT is
that dataset's folder; it must be reachable at the same path from the client and every
worker (one machine, or a shared file system). The parts go to a temporary folder beside
OUT, renamed onto OUT once every partition passed: a refused partition leaves nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlwright._logging import get_logger
from mlwright.exceptions import ColumnNotFoundError, ConfigError, DataSourceError
from mlwright.serve.batchfile import Checked, ScoreSummary, check_chunk, predict_chunk

__all__ = ["score_dataset"]

log = get_logger(__name__)

#: Per worker process: compiled predictors by the key of the broadcast model.
_PREDICTORS: dict[str, Any] = {}


@dataclass(frozen=True)
class _Piece:
    """Row groups of one Parquet file, and DATA's row number of their first row."""

    path: str
    row_groups: tuple[int, ...]
    first: int
    rows: int
    partition_keys: tuple[tuple[str, Any, Any], ...] = ()  # hive: (name, value, Arrow type)


def _pieces(data: str, chunk_rows: int) -> tuple[list[_Piece], Any]:
    """The dataset's pieces in the in-process reader's order, and its Arrow schema."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    path = Path(data)
    if not path.exists():
        raise DataSourceError(f"{data!r} does not exist; give a Parquet file or a folder of "
                              f"Parquet files (a dataset) reachable from every worker.")
    if path.is_dir():
        dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
        fragments = [(f.path, ds.get_partition_keys(f.partition_expression))
                     for f in dataset.get_fragments()]
        schema = dataset.schema
    elif path.suffix.lower() in (".parquet", ".pq"):
        fragments, schema = [(str(path), {})], pq.read_schema(str(path))
    else:
        raise ConfigError(f"--cluster scores Parquet: {data!r} is not a .parquet file nor a "
                          f"folder of them. Convert it first (e.g. 'mlwright data convert' "
                          f"or pandas' to_parquet), or score it without --cluster.")
    pieces: list[_Piece] = []
    first = 0
    for file, keys in fragments:
        meta = pq.ParquetFile(file).metadata
        group: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            group.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= chunk_rows or g == meta.num_row_groups - 1:
                pieces.append(_Piece(file, tuple(group), first, rows, tuple(
                    (k, v, schema.field(k).type) for k, v in sorted(keys.items()))))
                first += rows
                group, rows = [], 0
    return pieces, schema


def _read_piece(piece: _Piece) -> pd.DataFrame:
    """One partition: the piece's rows as the in-process reader types them, indexed by
    DATA's row numbers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlwright.data.sources import normalize_frame

    table = pq.ParquetFile(piece.path).read_row_groups(list(piece.row_groups))
    for name, value, kind in piece.partition_keys:  # hive folders' columns, as a scan
        if name not in table.column_names:
            table = table.append_column(name, pa.array([value] * table.num_rows, type=kind))
    frame = normalize_frame(table.to_pandas())
    frame.index = pd.RangeIndex(piece.first, piece.first + len(frame))
    return frame


def _predictor(key: str, model: Any) -> Any:
    predictor = _PREDICTORS.get(key)
    if predictor is None:
        from mlwright.search.predictor import compile_predictor

        predictor = _PREDICTORS[key] = compile_predictor(model.model, model.contract)
    return predictor


def _forget(key: str) -> None:
    _PREDICTORS.pop(key, None)


@dataclass
class _Done:
    """What a partition's task hands back: its check, and where its part went."""

    index: int
    first: int
    checked: Checked
    written: str | None = None


def _score_partition(chunk: pd.DataFrame, index: int, model: Any, key: str,
                     id_column: str | None, folder: str) -> _Done:
    """Check, predict and write one partition (on a worker). Problems come back as data:
    the client raises them with DATA's row numbers."""
    first = int(chunk.index[0]) if len(chunk) else 0
    features = list(model.contract.feature_names)
    inputs = chunk if id_column is None or id_column in features \
        else chunk.drop(columns=[id_column])
    checked = check_chunk(inputs, model.contract)
    if not checked.ok or not len(chunk):
        return _Done(index, first, checked)
    frame, _, _ = predict_chunk(_predictor(key, model), model.classes, inputs[features])
    frame.insert(0, id_column or "row", chunk[id_column].to_numpy() if id_column
                 else chunk.index.to_numpy())
    path = Path(folder) / f"part-{index:06d}.parquet"
    frame.to_parquet(path, index=False)
    return _Done(index, first, checked, written=str(path))


def score_dataset(model: Any, data: str, out: str | Path, client: Any, *,
                  id_column: str | None = None, chunk_rows: int = 1_000_000) -> ScoreSummary:
    """Score the Parquet file or dataset ``data`` with a loaded model on ``client``'s
    workers into the Parquet dataset folder ``out`` (see the module docstring).

    Args:
        model: a ``LoadedModel`` (``serve.runtime.load_source``).
        client: a ``distributed.Client`` (:func:`mlwright.cluster.connect`).
        id_column: the column keying each output row (else ``row``, DATA's 0-based row).
        chunk_rows: about this many rows per partition (whole row groups).
    """
    import dask
    import dask.dataframe as dd

    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, got {chunk_rows}.")
    target = Path(out)
    if target.exists() and not (target.is_dir() and _ours(target)):
        raise ConfigError(f"{str(target)!r} exists and is not a folder of predictions "
                          f"written by 'mlwright predict --cluster'; give a new folder.")
    if not target.parent.is_dir():
        raise ConfigError(f"The folder of {str(target)!r} does not exist; create it first.")
    pieces, schema = _pieces(str(data), chunk_rows)
    if id_column is not None and id_column not in schema.names:
        raise ColumnNotFoundError(id_column, schema.names, role="--id column")
    started = time.perf_counter()
    summary = ScoreSummary(out=target)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.part"
    tmp.mkdir()
    key = f"mlwright-model-{uuid.uuid4().hex}"
    # The model as a task of the graph rather than scattered data: a worker that dies
    # holding its only copy does not lose it (the scheduler can compute it again).
    shared = dask.delayed(model, name=key)
    futures: list[Any] = []
    try:
        meta = _read_piece(_Piece(pieces[0].path, (), 0, 0, pieces[0].partition_keys)) \
            if pieces else None
        frame = dd.from_map(_read_piece, pieces, meta=meta,
                            divisions=[p.first for p in pieces] + [pieces[-1].first
                                                                   + pieces[-1].rows - 1],
                            enforce_metadata=False) if pieces else None
        parts = frame.to_delayed() if frame is not None else []
        tasks = [dask.delayed(_score_partition)(part, i, shared, key, id_column, str(tmp))
                 for i, part in enumerate(parts)]
        futures = client.compute(tasks)
        done: list[_Done] = []
        from distributed import as_completed

        # The client's loop named: without it as_completed looks for the process's
        # default client, and a client opened from an address is not one.
        for future in as_completed(futures, loop=client.loop):
            result: _Done = future.result()
            if not result.checked.ok:
                raise result.checked.refusal(result.first, str(data), target)
            done.append(result)
        for result in sorted(done, key=lambda r: r.index):
            result.checked.add_to(summary)
            summary.rows += result.checked.n_rows
        summary.chunks = len(done)
        if not any(r.written for r in done):  # no rows: still a readable dataset
            pd.DataFrame({id_column or "row": [], "prediction": []}).to_parquet(
                tmp / "part-000000.parquet", index=False)
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        with contextlib.suppress(Exception):
            client.run(_forget, key)
    summary.seconds = time.perf_counter() - started
    log.info("scored %d rows of %s into %s on the cluster in %.1f s", summary.rows, data,
             target, summary.seconds)
    return summary


def _ours(folder: Path) -> bool:
    return all(p.name.startswith("part-") and p.suffix == ".parquet"
               for p in folder.iterdir())


def _commit(tmp: Path, target: Path) -> None:
    """``tmp`` becomes ``target``; an earlier output there is removed once replaced."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
