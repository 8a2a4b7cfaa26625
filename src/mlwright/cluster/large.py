"""The chosen LightGBM configuration refit on every row of a Parquet dataset larger than
one machine's memory, with ``lightgbm.dask`` (:func:`refit_lightgbm`).

Each piece of the dataset (whole row groups, :class:`mlwright.data.dataset.Piece`) is read,
stripped of the held-out rows (a range of :func:`mlwright.data.dataset.row_draw`: the
same rows the client reads for the holdout evaluation), prepared by the preprocessing
fitted on the sample and turned into a float matrix on the worker that reads it; piece i
goes to worker i mod W (workers sorted by address) and each worker's pieces become one part
in dataset order; lightgbm.dask's machines are ranked in that order (:func:`_ordered_client`),
so the same cluster gets the same data on each rank and the fit repeats. The raw rows never
leave the worker; the client holds the sample, the holdout and the final model.
``DaskLGBMClassifier.to_local()`` gives an ordinary ``LGBMClassifier``: the shipped model is
an ordinary ensemble of one member that ``predict``, ``serve`` and the registry handle as
any other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mlwright._lazy import require
from mlwright._logging import get_logger
from mlwright.data.dataset import ParquetDataset, Piece, row_draw
from mlwright.exceptions import ConfigError

__all__ = ["local_cluster", "refit_lightgbm"]

log = get_logger(__name__)


def _prepare(dataset: ParquetDataset, piece: Piece, seed: int, holdout: float, prep: Any,
             target: str, classes: list[Any] | None, log_target: bool
             ) -> tuple[np.ndarray, np.ndarray, int]:
    """One piece on its worker: the refit rows' design matrix, their encoded target, and
    how many rows were dropped (a missing target, or a class the model does not know)."""
    frame = dataset.read(piece)
    frame = frame[row_draw(piece.first, piece.rows, seed) >= holdout]
    y = frame[target]
    if classes is not None:
        lookup = {c: i for i, c in enumerate(classes)}
        codes = y.map(lookup)
        keep = codes.notna().to_numpy()
        yv = codes[keep].to_numpy(dtype=np.float64)
    else:
        keep = y.notna().to_numpy()
        yv = y[keep].to_numpy(dtype=np.float64)
        if log_target:
            yv = np.log1p(yv)
    X = prep.transform(frame[keep].drop(columns=[target]))
    return np.ascontiguousarray(X, dtype=np.float64), yv, int((~keep).sum())


def _stack(parts: list[tuple[np.ndarray, np.ndarray, int]]
           ) -> tuple[np.ndarray, np.ndarray, int]:
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            sum(p[2] for p in parts))


def _shape(part: tuple[np.ndarray, np.ndarray, int]) -> tuple[tuple[int, ...], int]:
    return part[0].shape, part[2]


def _item(part: tuple[Any, ...], i: int) -> Any:
    return part[i]


def _trim() -> None:
    """Give the pieces' freed memory back to the system before LightGBM copies the data:
    the text columns read and dropped leave glibc's heap fragmented, and a worker's limit
    counts its resident memory."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _ordered_client(client: Any) -> Any:
    """A second client of ``client``'s scheduler whose ``who_has`` answers in the order of
    the futures asked about: lightgbm.dask ranks its machines in that order (the stock
    answer follows a set of keys, i.e. string hashing), and each rank bins some features
    from its own rows, so a fixed order makes the fit repeat."""
    distributed = require("distributed", feature="the out-of-core refit (Dask)",
                          package="distributed", extra="cluster")

    class OrderedClient(distributed.Client):  # type: ignore[name-defined]
        def who_has(self, futures: Any = None, **kwargs: Any) -> Any:
            answer = super().who_has(futures, **kwargs)
            if futures is None:
                return answer
            keys = [f.key for f in self.futures_of(futures)]
            return type(answer)({k: answer[k] for k in keys if k in answer})

    return OrderedClient(client.scheduler.address, security=client.security,
                         set_as_default=False, timeout=30)


def refit_lightgbm(client: Any, dataset: ParquetDataset, *, estimator: Any, prep: Any,
                   target: str, classes: list[Any] | None, holdout: float, seed: int,
                   n_ordinal: int, log_target: bool = False,
                   progress: Callable[[str], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """``estimator`` (an unfitted LGBMClassifier / LGBMRegressor, the search's chosen
    configuration) fitted with ``lightgbm.dask`` on every row of ``dataset`` whose draw is at
    least ``holdout``; returns the local model and what the fit saw."""
    require("lightgbm", feature="the out-of-core refit", package="lightgbm")
    own = _ordered_client(client)
    try:
        return _refit(own, dataset, estimator=estimator, prep=prep, target=target,
                      classes=classes, holdout=holdout, seed=seed, n_ordinal=n_ordinal,
                      log_target=log_target, progress=progress)
    finally:
        own.close()


def _refit(client: Any, dataset: ParquetDataset, *, estimator: Any, prep: Any,
           target: str, classes: list[Any] | None, holdout: float, seed: int,
           n_ordinal: int, log_target: bool,
           progress: Callable[[str], None] | None) -> tuple[Any, dict[str, Any]]:
    import dask.array as da
    from dask import delayed
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    say = progress or (lambda message: log.info("%s", message))
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise ConfigError("The Dask cluster has no worker to refit on.")
    prep_future = client.scatter(prep, broadcast=True, hash=False)
    ds_future = client.scatter(dataset, broadcast=True, hash=False)
    say(f"Preparing {dataset.n_rows:,} rows in {len(dataset.pieces)} pieces on "
        f"{len(workers)} Dask workers")
    pieces = [client.submit(_prepare, ds_future, piece, seed, holdout, prep_future, target,
                            classes, log_target, workers=[workers[i % len(workers)]],
                            allow_other_workers=False, pure=False)
              for i, piece in enumerate(dataset.pieces)]
    # One part per worker, its pieces in dataset order: lightgbm.dask orders the machines
    # and each machine's rows by its parts, and bins and bagging follow that order.
    parts = [client.submit(_stack, pieces[w::len(workers)], workers=[address],
                           allow_other_workers=False, pure=False)
             for w, address in enumerate(workers) if pieces[w::len(workers)]]
    del pieces
    shapes = client.gather([client.submit(_shape, p, workers=[workers[w]])
                            for w, p in enumerate(parts)])
    xs = [client.submit(_item, p, 0, workers=[workers[w]]) for w, p in enumerate(parts)]
    ys = [client.submit(_item, p, 1, workers=[workers[w]]) for w, p in enumerate(parts)]
    del parts  # the matrices live on in xs and ys
    client.run(_trim)
    n_features = shapes[0][0][1]
    rows = sum(s[0][0] for s in shapes)
    dropped = sum(s[1] for s in shapes)
    if rows == 0:
        raise ConfigError(f"No row of {dataset.spec!r} is left to refit on (every row held "
                          f"out or without a target).")
    X = da.concatenate([da.from_delayed(delayed(x), shape=s[0], dtype=np.float64)
                        for x, s in zip(xs, shapes, strict=True) if s[0][0]])
    y = da.concatenate([da.from_delayed(delayed(v), shape=(s[0][0],), dtype=np.float64)
                        for v, s in zip(ys, shapes, strict=True) if s[0][0]])
    params = estimator.get_params()
    params.pop("n_jobs", None)  # lightgbm.dask: each worker's thread count
    cls = DaskLGBMClassifier if classes is not None else DaskLGBMRegressor
    model = cls(client=client, **params)
    say(f"Fitting LightGBM on {rows:,} rows x {n_features} features "
        f"({params.get('n_estimators')} rounds) with lightgbm.dask")
    kwargs: dict[str, Any] = {}
    if n_ordinal:
        kwargs["categorical_feature"] = list(range(n_ordinal))
    with client.as_current():  # lightgbm.dask waits on the default client
        model.fit(X, y, **kwargs)
    local = model.to_local()
    local.set_params(n_jobs=1)  # served batches are small: threads cost more than they save
    del xs, ys, X, y
    return local, {"rows": rows, "dropped": dropped, "features": n_features,
                   "workers": len(workers), "pieces": len(dataset.pieces)}


@contextlib.contextmanager
def local_cluster(n_workers: int | None = None, memory_limit: str | float | None = None
                  ) -> Iterator[Any]:
    """A LocalCluster of process workers (one thread each) sized to this machine, and its
    client; both closed on exit."""
    distributed = require("distributed", feature="the out-of-core refit (Dask)",
                          package="distributed", extra="cluster")
    n = n_workers or max(1, min(os.cpu_count() or 1, 8))
    cluster = distributed.LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, memory_limit=memory_limit or "auto", silence_logs=40)
    try:
        client = distributed.Client(cluster, set_as_default=False)
        try:
            client.wait_for_workers(n, timeout=120)
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
