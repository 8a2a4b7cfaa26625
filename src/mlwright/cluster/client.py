"""The Dask client: an address (``tcp://HOST:8786``), or a ``distributed.Client`` the
caller already holds (tests and notebooks: a ``LocalCluster``'s)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mlwright._lazy import require
from mlwright.exceptions import ConfigError

__all__ = ["connect"]

#: Seconds to wait for the scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = 15


@contextlib.contextmanager
def connect(cluster: Any, *, timeout: float = CONNECT_TIMEOUT) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (an address or a Client), with at least one
    worker; a client opened here is closed on exit, one passed in is left open."""
    distributed = require("distributed", feature="--cluster (Dask)", package="distributed",
                          extra="cluster")
    if isinstance(cluster, distributed.Client):
        _check_workers(cluster, str(cluster.scheduler.address), timeout)
        yield cluster
        return
    address = str(cluster).strip()
    if not address:
        raise ConfigError("The cluster address is empty; give the Dask scheduler's address, "
                          "e.g. --cluster tcp://scheduler:8786.")
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"Could not reach the Dask scheduler at {address!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}). Start one with 'dask scheduler' and workers "
            f"with 'dask worker {address}', or fix the address (cluster = in mlwright.toml, "
            f"or --cluster).") from exc
    try:
        _check_workers(client, address, timeout)
        yield client
    finally:
        client.close()


def _check_workers(client: Any, address: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as exc:
        raise ConfigError(
            f"The Dask scheduler at {address!r} has no worker (waited {timeout:g} s). Start "
            f"workers with 'dask worker {address}' on hosts that have mlwright installed."
        ) from exc
