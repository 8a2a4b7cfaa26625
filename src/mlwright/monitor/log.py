"""Reading a window of the prediction log, fast.

A window (:mod:`mlwright.store.window`) is the last N records (``"5000"``: exactly N, by
time then log id) or the records of the last duration (``"1d"``, ``"6h"``) before ``end``.
What is read, per window:

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

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.exceptions import MonitorError
from mlwright.store import WindowSpec, float_text, window_filter
from mlwright.store import predictions as p

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Engine

    from mlwright.monitor.reference import Reference

__all__ = ["LogWindow", "read_window"]


@dataclass
class LogWindow:
    """One window: exact counts of all its records, details of a uniform sample."""

    spec: WindowSpec
    start: float | None
    end: float | None
    n_records: int
    n_scored: int                             # answered 200
    n_requests: int                           # requests (records with index 0)
    status_counts: dict[str, int]
    versions: dict[str, int]
    latency_ms: np.ndarray                    # latencies of the sampled requests
    sample: Sample                            # the sampled records answered 200
    violations: list[str]                     # JSON lists of the records that have any
    where: list[Any]                          # the window's SQL conditions

    def __len__(self) -> int:
        return self.n_records

    @property
    def sampled(self) -> bool:
        return len(self.sample) < self.n_scored

    def inputs(self, reference: Reference) -> pa.Table:
        """The JSON inputs of the sampled scored records as an Arrow table."""
        return parse_json_rows(self.sample.inputs, reference)


@dataclass
class Sample:
    """Sampled scored records, as the log's JSON text: the database concatenates them, so a
    million-record window costs a few hundred fetched rows, not a Python tuple per record."""

    ids: np.ndarray
    inputs: str = ""                          # newline-delimited JSON objects
    predictions: str = "[]"                   # JSON array, one entry per record
    proba: str = "[]"                         # JSON array of lists (or null)

    def __len__(self) -> int:
        return len(self.ids)


def _numeric_schema(reference: Reference) -> Any:
    import pyarrow as pa

    from mlwright.data.contract import LogicalType

    fields = [pa.field(name, pa.float64()) for name, dtype in reference.dtypes.items()
              if dtype in (LogicalType.INTEGER, LogicalType.FLOAT)
              and reference.columns[name].type == "numeric"]
    return pa.schema(fields)


def parse_json_rows(payload: str, reference: Reference) -> pa.Table:
    """Newline-delimited JSON objects (one per record) -> an Arrow table; a slower exact path
    if Arrow refuses."""
    import pyarrow as pa
    import pyarrow.json as pj

    if not payload:
        return pa.table({})
    data = payload.encode("utf-8")
    try:
        return pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(block_size=max(1 << 20, len(data) // 4 + 1)),
            parse_options=pj.ParseOptions(explicit_schema=_numeric_schema(reference),
                                          unexpected_field_behavior="infer"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Mixed types within a column (e.g. text where a number belongs, in rejected rows):
        # numbers the contract expects are coerced (unreadable -> missing), the rest is text.
        import orjson
        import pandas as pd

        frame = pd.DataFrame.from_records([orjson.loads(t) for t in payload.split("\n")])
        numeric = set(_numeric_schema(reference).names)
        for name in frame.columns:
            if name in numeric:
                frame[name] = pd.to_numeric(frame[name], errors="coerce")
            elif frame[name].dtype == object:
                frame[name] = frame[name].map(lambda v: None if v is None else str(v))
        return pa.Table.from_pandas(frame, preserve_index=False)


def _fetch(engine: Engine, query: Any) -> Sequence[Any]:
    with engine.connect() as conn:
        # Rows straight from the DB-API cursor: SQLAlchemy's Row objects would cost about
        # a second per million records.
        result = conn.execute(query)
        rows = result.cursor.fetchall()
        result.close()
    return rows


def read_window(engine: Engine, model: str, spec: WindowSpec, *, end: float | None = None,
                version: str | None = None, roles: tuple[str, ...] = ("champion", "challenger"),
                sample_rows: int = 100_000, where: list[Any] | None = None) -> LogWindow:
    """The records of ``model`` in the window ending at ``end`` (default: the last record),
    or those ``where`` selects (from :func:`window_filter`).

    Counts by version and status come from the covering window index (no row is read), then
    only the sampled records' rows are read, and the records with violations through their
    own partial index: a row read costs a page and a fetched row a Python tuple, so nothing
    else is fetched. ``shadow`` rows are left out by default: they repeat the inputs of
    answered requests.
    """
    from sqlalchemy import case, func, select

    if where is None:
        where = window_filter(engine, model, spec, end=end, version=version, roles=roles)
        if where is None:
            return _empty(spec)
    counts = select(p.c.version, p.c.status, func.count(), func.min(p.c.ts), func.max(p.c.ts),
                    func.sum(case((p.c.row == 0, 1), else_=0))).where(*where).group_by(
                        p.c.version, p.c.status)
    # The GROUP BY sorts the whole window inside the database (GIL released): it runs in a
    # thread while the sample is read, which needs only the plain count.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlwright-window") as pool:
        counted = pool.submit(_fetch, engine, counts)
        n_counted = _fetch(engine, select(func.count()).where(*where))[0][0]
        sample, latency = _sample(engine, where, sample_rows, n_counted)
        groups = counted.result()
    if not groups:
        return _empty(spec)
    versions: dict[str, int] = {}
    status_counts: dict[str, int] = {}
    for v, st, n, _, _, _ in groups:
        versions[str(v)] = versions.get(str(v), 0) + int(n)
        status_counts[str(st)] = status_counts.get(str(st), 0) + int(n)
    n_records = sum(versions.values())  # a server may have logged more since the count
    # Violations of every record, sampled or not: a partial index holds just those.
    violations = [r[0] for r in _fetch(engine, select(p.c.violations).where(
        *where, p.c.violations.is_not(None)).order_by(p.c.ts, p.c.id))]
    return LogWindow(
        spec, float(min(g[3] for g in groups)), float(max(g[4] for g in groups)), n_records,
        status_counts.get("200", 0), int(sum(g[5] or 0 for g in groups)), status_counts,
        versions, latency, sample, violations, where)


#: Records per concatenated chunk: a chunk must stay far below the database's longest
#: string (1 GB in SQLite) however wide the inputs.
CHUNK = 4096


def _sample(engine: Engine, where: list[Any], sample_rows: int, n_records: int
            ) -> tuple[Sample, np.ndarray]:
    """About ``sample_rows`` of the window's records: the scored ones' JSON, and the
    latency of the requests among them."""
    from sqlalchemy import BigInteger, String, case, cast, func, select

    def joined(value: Any, separator: str = ",") -> Any:  # NULLs (other records) are skipped
        return func.aggregate_strings(value, separator)

    def scored(value: Any) -> Any:
        return case((p.c.status == 200, value), else_=None)

    query = select(
        joined(scored(cast(p.c.id, String))),
        joined(scored(p.c.inputs), "\n"),
        joined(scored(func.coalesce(p.c.prediction, "null"))),
        joined(scored(func.coalesce(p.c.proba, "null"))),
        joined(case((p.c.row == 0, func.coalesce(float_text(p.c.latency_ms), "nan")),
                    else_=None)),
    ).where(*where).group_by(p.c.id // CHUNK)
    if n_records > sample_rows:
        # A multiplicative hash of the id picks the sample: uniform, the same on every run,
        # and blind to a record's position in its request (id modulo k would alias with
        # batch sizes).
        bucket = (cast(p.c.id, BigInteger) * 2654435761) % 4294967296
        query = query.where(bucket < int(4294967296 * sample_rows / n_records))
    chunks = _fetch(engine, query) if n_records else []

    def texts(column: int) -> list[str]:
        return [c[column] for c in chunks if c[column]]

    ids = ",".join(texts(0))
    latency = ",".join(texts(4))
    sample = Sample(
        ids=np.array(ids.split(","), dtype=np.int64) if ids else np.array([], dtype=np.int64),
        inputs="\n".join(texts(1)), predictions="[" + ",".join(texts(2)) + "]",
        proba="[" + ",".join(texts(3)) + "]")
    return sample, (np.array(latency.split(","), dtype=np.float64) if latency
                    else np.array([], dtype=np.float64))


def _empty(spec: WindowSpec) -> LogWindow:
    return LogWindow(spec, None, None, 0, 0, 0, {}, {}, np.array([]),
                     Sample(np.array([], dtype=np.int64)), [], [])


def no_predictions(model: str, database: str, *, version: str | None = None,
                   engine: Engine | None = None) -> MonitorError:
    """The error of an empty window. With a ``version`` the model may well have predictions,
    of other versions: name those instead of suggesting to serve the model."""
    if version is not None and engine is not None:
        from sqlalchemy import select

        with engine.connect() as conn:
            logged = sorted({str(v) for (v,) in conn.execute(
                select(p.c.version).where(p.c.model == model).distinct())},
                key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
        if logged:
            return MonitorError(
                f"Version {version!r} of model {model!r} has no logged predictions in "
                f"{database}; the log has versions {', '.join(logged)}. Pick one of them, or "
                f"leave the version out to monitor every version.")
    return MonitorError(
        f"No logged predictions of model {model!r} in {database}. Serve it first (mlwright "
        f"serve {model}) and send requests, or check the model name and --db URL.")
