"""Batch scoring of a whole table: what ``mlwright predict MODEL DATA -o OUT`` runs.

DATA is streamed in chunks, so memory holds one chunk whatever the table's size: a Parquet
file row batch by row batch (``ParquetFile.iter_batches``; a folder of parts part by part,
each with its own column types), a CSV file through pandas' chunked reader; other sources
(JSON Lines, SQL, DuckDB) are read whole, then scored in chunks. Each chunk is checked
against the model's contract (errors stop the run, naming the rows; warnings are counted),
predicted by the compiled predictor the server uses, and appended to a temporary file beside
OUT, which is renamed onto OUT once every chunk passed: a malformed chunk leaves nothing
partial behind.

Rows are keyed by the input's row id: the ``id`` column when given, else ``row``, the
0-based row number in DATA.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.exceptions import ColumnNotFoundError, ConfigError, ContractError

__all__ = ["OUTPUT_FORMATS", "Checked", "ScoreSummary", "check_chunk", "predict_chunk",
           "read_chunks", "score_file"]

log = get_logger(__name__)

OUTPUT_FORMATS = {".parquet": "parquet", ".csv": "csv"}
_SHOWN_ROWS = 10
_SHOWN_MESSAGES = 3


@dataclass
class ScoreSummary:
    """What a run scored: rows, time, and the contract warnings by (column, rule)."""

    out: Path
    rows: int = 0
    chunks: int = 0
    seconds: float = 0.0
    logged: int = 0
    warnings: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def read_chunks(data: Any, *, chunk_rows: int, table: str | None = None,
                query: str | None = None, **options: Any
                ) -> tuple[int | None, Iterator[pd.DataFrame]]:
    """(rows in DATA when known up front, the chunks as ``mw.load`` would type them)."""
    from mlwright.data.sources import normalize_frame, resolve_source

    source = resolve_source(data, table=table, query=query, **options)
    path = Path(str(data))
    if source.name == "parquet":
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        if path.is_dir():
            dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
            total: int | None = dataset.count_rows()
            batches: Iterator[Any] = _part_batches(dataset, chunk_rows)
        else:
            parquet = pq.ParquetFile(str(path))
            total = parquet.metadata.num_rows
            batches = parquet.iter_batches(batch_size=chunk_rows)
        return total, (normalize_frame(pa.Table.from_batches([b]).to_pandas())
                       for b in batches)
    if source.name == "csv":
        from mlwright.data.sources import sniff_csv

        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        encoding, delimiter = sniff_csv(head)
        encoding = options.get("encoding") or encoding
        delimiter = options.get("delimiter") or delimiter
        reader = pd.read_csv(path, sep=delimiter, encoding=encoding, chunksize=chunk_rows,
                             low_memory=False)
        return None, (normalize_frame(chunk) for chunk in reader)
    from mlwright.data import load

    whole = load(data, table=table, query=query, **options)
    return len(whole), (whole.iloc[i:i + chunk_rows].reset_index(drop=True)
                        for i in range(0, len(whole), chunk_rows))


def _part_batches(dataset: Any, chunk_rows: int) -> Iterator[Any]:
    """A Parquet dataset's batches part by part, each part with its own column types and
    its hive partition keys as columns: a part whose types differ from the others' (text
    where the others hold numbers) or that lacks a column then reaches the contract check,
    which names its rows, instead of failing Arrow's cast to the dataset's schema."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    for fragment in dataset.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        for batch in fragment.to_batches(schema=fragment.physical_schema,
                                         batch_size=chunk_rows):
            for name, value in keys.items():
                kind = dataset.schema.field(name).type
                batch = batch.append_column(name, pa.array([value] * batch.num_rows, kind))
            yield batch


@dataclass
class Checked:
    """A chunk checked against the contract, in a form that travels (a Dask worker's):
    the warnings counted by (column, rule) with one message each, and what refuses the
    chunk, if anything (its first rows, 0-based within the chunk, and messages)."""

    n_rows: int
    warnings: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    refused_rows: list[int] | None = None  # None: no error; []: every row
    refused_count: int = 0
    messages: str = ""

    @property
    def ok(self) -> bool:
        return self.refused_rows is None

    def add_to(self, summary: ScoreSummary) -> None:
        summary.warnings.update(self.warnings)
        for key, message in self.examples.items():
            summary.examples.setdefault(key, message)

    def refusal(self, first: int, data: str, out: Path) -> ContractError:
        """The error that stops the run; ``first``: DATA's row number of the chunk's first
        row (the chunk was checked with DATA's row numbers as its index)."""
        rows = self.refused_rows or []
        where = (f"rows {', '.join(str(r) for r in rows[:_SHOWN_ROWS])}"
                 + (f" and {self.refused_count - _SHOWN_ROWS:,} more"
                    if self.refused_count > _SHOWN_ROWS else "")
                 if rows else "every row")
        return ContractError(
            f"{data}: the chunk of rows {first:,}-{first + self.n_rows - 1:,} breaks the "
            f"model's data contract, {self.refused_count or self.n_rows:,} rows refused "
            f"({where}; 0-based row numbers of DATA). {self.messages}. Nothing was written "
            f"to {str(out)!r}. Fix those rows or columns (`mlwright validate DATA --contract "
            f"...` lists every problem) and run again.")


def check_chunk(chunk: pd.DataFrame, contract: Any) -> Checked:
    """Errors refuse the chunk, naming its rows (its index: DATA's row numbers); warnings
    are counted."""
    from mlwright.data.contract import validate

    result = validate(chunk, contract)
    checked = Checked(len(chunk))
    for v in result.warnings:
        key = (v.column, v.rule)
        checked.warnings[key] += 1
        checked.examples.setdefault(key, v.message)
    if not result.ok:
        rows = result.rows_with_errors()
        checked.refused_rows = [int(r) for r in rows[:_SHOWN_ROWS]]
        checked.refused_count = len(rows)
        checked.messages = "; ".join(v.message.rstrip(".")
                                     for v in result.errors[:_SHOWN_MESSAGES])
    return checked


def _check(chunk: pd.DataFrame, contract: Any, first: int, summary: ScoreSummary,
           data: str, out: Path) -> None:
    checked = check_chunk(chunk, contract)
    checked.add_to(summary)
    if not checked.ok:
        raise checked.refusal(first, data, out)


def predict_chunk(predictor: Any, classes: list[Any] | None,
                  inputs: pd.DataFrame) -> tuple[pd.DataFrame, Any, Any]:
    """(the output columns: prediction and proba_<class>, the predictions, the
    probabilities or None) of the compiled ``predictor`` on ``inputs``."""
    preds, proba = predictor.predict_frame(inputs)
    frame = pd.DataFrame({"prediction": preds})
    if proba is not None and classes:
        for j, c in enumerate(classes):
            frame[f"proba_{c}"] = proba[:, j]
    return frame, preds, proba


class _Writer:
    """Appends prediction chunks to a temporary file beside OUT; ``commit`` renames it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.format = OUTPUT_FORMATS[out.suffix.lower()]
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        os.close(fd)
        self.tmp = Path(name)
        self._parquet: Any = None
        self._schema: Any = None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(self.tmp, mode="w" if self._first else "a", header=self._first,
                         index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(str(self.tmp), self._schema)
            self._parquet.write_table(table)
        self._first = False

    def commit(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._first and self.format == "parquet":  # no rows: still a readable file
            pd.DataFrame({"row": [], "prediction": []}).to_parquet(self.tmp, index=False)
        os.replace(self.tmp, self.out)

    def discard(self) -> None:
        if self._parquet is not None:
            with contextlib.suppress(Exception):
                self._parquet.close()
        self.tmp.unlink(missing_ok=True)


class _Log:
    """The prediction log (the server's writer, on an event loop of its own)."""

    def __init__(self, database_url: str) -> None:
        import asyncio

        from mlwright.serve.logwriter import LogWriter
        from mlwright.store import open_database

        self.loop = asyncio.new_event_loop()
        # Two chunks queued at most: the scorer waits for the database, memory stays bounded.
        self.writer = LogWriter(open_database(database_url), max_queue=2)

        async def start() -> None:
            self.writer.start()

        self.loop.run_until_complete(start())
        self.request_id = f"batch-{uuid.uuid4().hex[:16]}"

    def put(self, entry: Any) -> None:
        self.loop.run_until_complete(self.writer.put(entry))

    def close(self) -> int:
        self.loop.run_until_complete(self.writer.close())
        self.loop.close()
        return int(self.writer.written)

    def retract(self) -> int:
        """Delete the rows this run logged (after :meth:`close`): a refused or failed run
        writes no output file, so its rows in the log would be predictions nobody received,
        and a rerun would log them twice. The run's rows share its one request id."""
        from mlwright.store import predictions

        with self.writer.engine.begin() as conn:
            gone = conn.execute(predictions.delete().where(
                predictions.c.request_id == self.request_id)).rowcount
        return int(gone or 0)


def _records(chunk: pd.DataFrame) -> list[dict[str, Any]]:
    return chunk.astype(object).where(chunk.notna(), None).to_dict("records")


def score_file(model: Any, data: str, out: str | Path, *, id_column: str | None = None,
               chunk_rows: int = 100_000, log_database: str | None = None,
               on_chunk: Callable[[int, int | None], None] | None = None,
               table: str | None = None, query: str | None = None,
               **options: Any) -> ScoreSummary:
    """Score DATA with a loaded model into OUT (.parquet or .csv); see the module docstring.

    Args:
        model: a ``LoadedModel`` (``serve.runtime.load_source`` of a run folder, a
            registry reference or an ``.onnx`` file from ``mlwright export``).
        id_column: the column keying each output row (else ``row``, the 0-based number).
        log_database: a SQLAlchemy URL: the rows also go to its prediction log (monitoring);
            a run that fails takes back the rows it logged, as it writes no file.
        on_chunk: called after each chunk with (rows done, rows in total when known).
    """
    from mlwright.search.predictor import compile_predictor

    target = Path(out)
    if target.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"Cannot write predictions to {str(target)!r}: expected a file "
                          f"ending in {' or '.join(OUTPUT_FORMATS)}.")
    if not target.parent.is_dir():
        raise ConfigError(f"The folder of {str(target)!r} does not exist; create it first.")
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, got {chunk_rows}.")
    contract = model.contract
    features = list(contract.feature_names)
    # An .onnx file's LoadedModel holds its onnxruntime predictor already.
    predictor = model.model if hasattr(model.model, "predict_frame") else compile_predictor(
        model.model, contract)
    classes = model.classes
    summary = ScoreSummary(out=target)
    total, chunks = read_chunks(data, chunk_rows=chunk_rows, table=table, query=query,
                                **options)
    writer = _Writer(target)
    logger = _Log(log_database) if log_database else None
    started = time.perf_counter()
    try:
        first = 0
        for chunk in chunks:
            chunk.index = pd.RangeIndex(first, first + len(chunk))
            if id_column is not None and id_column not in chunk.columns:
                raise ColumnNotFoundError(id_column, chunk.columns, role="--id column")
            # An id column outside the contract is not a stray column to warn about.
            inputs = chunk if id_column is None or id_column in features \
                else chunk.drop(columns=[id_column])
            _check(inputs, contract, first, summary, data, target)
            t0 = time.perf_counter()
            frame, preds, proba = predict_chunk(predictor, classes, inputs[features])
            key_name = id_column or "row"
            keys = chunk[id_column].to_numpy() if id_column else np.arange(
                first, first + len(chunk))
            frame.insert(0, key_name, keys)
            writer.write(frame)
            if logger is not None:
                from mlwright.serve.logwriter import PredictionEntry

                logger.put(PredictionEntry(
                    logger.request_id, time.time(), str(model.name), str(model.version),
                    "champion", _records(chunk[features]),
                    None if id_column is None else [str(k) for k in keys],
                    np.asarray(preds).tolist(), None if proba is None else proba.tolist(),
                    (time.perf_counter() - t0) * 1000 / max(len(chunk), 1), 200,
                    first_row=first))
            first += len(chunk)
            summary.chunks += 1
            summary.rows = first
            if on_chunk is not None:
                on_chunk(first, total)
        writer.commit()
    except BaseException:
        writer.discard()
        if logger is not None:
            logger.close()
            retracted = logger.retract()
            logger = None
            log.info("retracted the %d rows this refused run had logged", retracted)
        raise
    finally:
        if logger is not None:
            summary.logged = logger.close()
    summary.seconds = time.perf_counter() - started
    log.info("scored %d rows of %s into %s in %.1f s", summary.rows, data, target,
             summary.seconds)
    return summary
