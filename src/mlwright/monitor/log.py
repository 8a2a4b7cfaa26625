"""Reading a window of the prediction log, fast.

A window is the last N records (``"5000"``: every record logged at or after the N-th
latest one's time, so a request's records are never split) or the records of the last
duration (``"1d"``, ``"6h"``) before ``end``. What is read, per window:

* light columns of every record (id, time, status, record index, latency): service health,
  error rates, requests (records with index 0);
* contract violations of every record that has any (most have none);
* the JSON inputs and predictions of the scored records, or of a uniform sample of them
  (``sample_rows``, default 100,000) when the window is larger: the inputs are most of the
  log's bytes, and drift statistics on 100,000 records differ from those on all by far less
  than any drift threshold (the normed Wasserstein and Jensen-Shannon sampling error at
  that size is ~0.005 against a threshold of 0.1). The sample is a hash of the record id,
  so it is the same on every run.

The inputs are joined into newline-delimited JSON and parsed by Arrow's C++ reader in one
call (about 30x faster than ``json.loads`` per row), numeric contract columns typed
explicitly so a window never guesses a type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.exceptions import ConfigError, MonitorError

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Engine

    from mlwright.monitor.reference import Reference

__all__ = ["LogWindow", "WindowSpec", "parse_window", "read_window"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class WindowSpec:
    """``rows`` records, or ``seconds`` of time."""

    text: str
    rows: int | None = None
    seconds: float | None = None


def parse_window(window: str | int) -> WindowSpec:
    """``5000`` / ``"5000"`` -> the last 5000 records; ``"1d"``, ``"6h"``, ``"30m"``,
    ``"2w"`` -> the records of that long before the end."""
    text = str(window).strip()
    if text.isdigit() and int(text) > 0:
        return WindowSpec(text, rows=int(text))
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f"monitor window must be a positive row count (5000) or a duration such as 30m, "
            f"6h, 1d or 2w; got {window!r}.")
    return WindowSpec(text, seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass
class LogWindow:
    """The records of one window: light columns of all, heavy ones of the scored sample."""

    spec: WindowSpec
    start: float | None
    end: float | None
    columns: dict[str, np.ndarray]            # id, ts, status, row, latency_ms (all records)
    sample: dict[str, np.ndarray]             # id, inputs, prediction, proba (scored sample)
    n_scored: int                             # scored records in the window (all of them)
    versions: dict[str, int]
    violations: list[str]                     # JSON lists of the records that have any
    where: list[Any]                          # the window's SQL conditions

    def __len__(self) -> int:
        return len(self.columns["id"])

    @property
    def sampled(self) -> bool:
        return len(self.sample["id"]) < self.n_scored

    def inputs(self, reference: Reference) -> pa.Table:
        """The JSON inputs of the sampled scored records as an Arrow table."""
        return parse_json_rows(self.sample["inputs"], reference)


def _numeric_schema(reference: Reference) -> Any:
    import pyarrow as pa

    from mlwright.data.contract import LogicalType

    fields = [pa.field(name, pa.float64()) for name, dtype in reference.dtypes.items()
              if dtype in (LogicalType.INTEGER, LogicalType.FLOAT)
              and reference.columns[name].type == "numeric"]
    return pa.schema(fields)


def parse_json_rows(texts: np.ndarray | list[str], reference: Reference) -> pa.Table:
    """JSON objects (one per record) -> an Arrow table; a slow exact path if Arrow refuses."""
    import pyarrow as pa
    import pyarrow.json as pj

    if len(texts) == 0:
        return pa.table({})
    payload = "\n".join(t.replace("\n", " ") if "\n" in t else t
                        for t in texts).encode("utf-8")
    try:
        return pj.read_json(
            pa.BufferReader(payload),
            read_options=pj.ReadOptions(block_size=max(1 << 20, len(payload) // 4 + 1)),
            parse_options=pj.ParseOptions(explicit_schema=_numeric_schema(reference),
                                          unexpected_field_behavior="infer"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Mixed types within a column (e.g. text where a number belongs, in rejected rows):
        # numbers the contract expects are coerced (unreadable -> missing), the rest is text.
        import orjson
        import pandas as pd

        frame = pd.DataFrame.from_records([orjson.loads(t) for t in texts])
        numeric = set(_numeric_schema(reference).names)
        for name in frame.columns:
            if name in numeric:
                frame[name] = pd.to_numeric(frame[name], errors="coerce")
            elif frame[name].dtype == object:
                frame[name] = frame[name].map(lambda v: None if v is None else str(v))
        return pa.Table.from_pandas(frame, preserve_index=False)


def _fetch(engine: Engine, query: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        # Rows straight from the DB-API cursor: SQLAlchemy's Row objects would cost about
        # a second per million records.
        result = conn.execute(query)
        rows = result.cursor.fetchall()
        result.close()
    return rows


def read_window(engine: Engine, model: str, spec: WindowSpec, *, end: float | None = None,
                version: str | None = None, roles: tuple[str, ...] = ("champion", "challenger"),
                sample_rows: int = 100_000) -> LogWindow:
    """The records of ``model`` in the window ending at ``end`` (default: the last record).

    ``shadow`` rows are left out by default: they repeat the inputs of answered requests.
    """
    from sqlalchemy import BigInteger, cast, func, select

    from mlwright.serve.logstore import predictions as p

    where: list[Any] = [p.c.model == model, p.c.role.in_(list(roles))]
    if version is not None:
        where.append(p.c.version == str(version))
    if end is not None:
        where.append(p.c.ts <= end)
    with engine.connect() as conn:
        if spec.rows is not None:
            start = conn.execute(select(p.c.ts).where(*where).order_by(p.c.ts.desc()).offset(
                spec.rows - 1).limit(1)).scalar()
            if start is None:  # fewer records than the window: all of them
                start = conn.execute(select(func.min(p.c.ts)).where(*where)).scalar()
            if start is None:
                return _empty(spec)
            where.append(p.c.ts >= start)
        else:
            if end is None:
                end = conn.execute(select(func.max(p.c.ts)).where(*where)).scalar()
                if end is None:
                    return _empty(spec)
                where.append(p.c.ts <= end)
            where.append(p.c.ts > end - float(spec.seconds or 0))
        versions = {str(v): int(n) for v, n in conn.execute(
            select(p.c.version, func.count()).where(*where).group_by(p.c.version))}
    rows = _fetch(engine, select(p.c.id, p.c.ts, p.c.status, p.c.row, p.c.latency_ms).where(
        *where).order_by(p.c.ts, p.c.id))
    if not rows:
        return _empty(spec)
    light = list(zip(*rows, strict=True))
    columns = {"id": np.array(light[0], dtype=np.int64),
               "ts": np.array(light[1], dtype=np.float64),
               "status": np.array(light[2], dtype=np.int64),
               "row": np.array(light[3], dtype=np.int64),
               "latency_ms": np.array([np.nan if v is None else v for v in light[4]],
                                      dtype=np.float64)}
    ok = columns["status"] == 200
    n_scored = int(ok.sum())
    scored = [*where, p.c.status == 200]
    if n_scored > sample_rows:
        # A multiplicative hash of the id: uniform, the same on every run, and blind to
        # the record's position in its request (plain id modulo k would alias with
        # fixed batch sizes).
        bucket = (cast(p.c.id, BigInteger) * 2654435761) % 4294967296
        scored.append(bucket < int(4294967296 * sample_rows / n_scored))
    heavy = _fetch(engine, select(p.c.id, p.c.inputs, p.c.prediction, p.c.proba).where(
        *scored).order_by(p.c.ts, p.c.id))
    cols = list(zip(*heavy, strict=True)) if heavy else [(), (), (), ()]
    sample = {"id": np.array(cols[0], dtype=np.int64),
              **{name: np.array(values, dtype=object)
                 for name, values in zip(("inputs", "prediction", "proba"), cols[1:],
                                         strict=True)}}
    violations = [v for (v,) in _fetch(engine, select(p.c.violations).where(
        *where, p.c.violations.is_not(None)))]
    ts = columns["ts"]
    return LogWindow(spec, float(ts.min()), float(ts.max()), columns, sample, n_scored,
                     versions, violations, where)


def _empty(spec: WindowSpec) -> LogWindow:
    columns = {name: np.array([], dtype=np.float64 if name in ("ts", "latency_ms")
                              else np.int64) for name in ("id", "ts", "status", "row",
                                                          "latency_ms")}
    sample = {"id": np.array([], dtype=np.int64),
              **{n: np.array([], dtype=object) for n in ("inputs", "prediction", "proba")}}
    return LogWindow(spec, None, None, columns, sample, 0, {}, [], [])


def no_predictions(model: str, database: str) -> MonitorError:
    return MonitorError(
        f"No logged predictions of model {model!r} in {database}. Serve it first (mlwright "
        f"serve {model}) and send requests, or check the model name and --db URL.")
