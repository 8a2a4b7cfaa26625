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
#: What a worker must have in the client's versions: it unpickles the client's data,
#: fitted preprocessing and models, and a model is fitted there to be used here.
PACKAGES = ("python", "mlwright", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost",
            "catboost", "optuna")


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
    problems = version_mismatches(client.get_versions(check=False, packages=list(PACKAGES)))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                           if len(problems) > 5 else "")
        raise ConfigError(
            f"The Dask workers at {address!r} do not have this client's versions: {shown}. "
            f"Install the same versions on every worker (pip install 'mlwright[cluster]' "
            f"from the same requirements), then restart the workers.")


def version_mismatches(versions: dict[str, Any]) -> list[str]:
    """'worker: package X (client Y)' for each of PACKAGES that a worker has in another
    version than the client, or lacks; ``versions``: ``Client.get_versions``'s answer."""
    def same(package: str, a: Any, b: Any) -> bool:
        if package == "python" and a and b:  # pickles travel between patch releases
            return str(a).split(".")[:2] == str(b).split(".")[:2]
        return bool(a == b)

    mine = versions["client"]["packages"]
    out = []
    for worker, info in sorted(versions.get("workers", {}).items()):
        theirs = info.get("packages", {})
        for package in PACKAGES:
            if package in mine and not same(package, theirs.get(package), mine[package]):
                out.append(f"{worker} has {package} {theirs.get(package) or 'missing'} "
                           f"(client {mine[package] or 'missing'})")
    return out
