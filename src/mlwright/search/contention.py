"""How much of the machine other processes are using, measured, for the search's threads.

A multi-threaded fit is only faster when its threads get cores. When another process keeps
the cores busy (a second training, a server), OpenMP's threads spin at every barrier waiting
for a sibling that is not running: a default HistGradientBoosting fit on mpls_person_search
took 0.36 s with two threads on a quiet 2-core machine, 1.3-4.1 s with two threads against
a second two-threaded fit, and 0.54-0.64 s with one (a 65 s trial past a 30 s budget in
benchmarks/budget.py --busy). Spinning less (``GOMP_SPINCOUNT``, ``OMP_WAIT_POLICY``) made
it worse in both cases, so the search asks for one thread per fit when others are busy.

The measure is the machine's busy CPU time (``/proc/stat``) less this process's own
(``os.times``, every thread), over the time since the last look, so the search's own load
never counts as contention. Where ``/proc/stat`` does not exist it reports none. One
measure serves the process (:func:`others_busy`): the search looks before each trial, the
report before its predictions, each over the time since the last look.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

__all__ = ["Contention", "one_thread_when_busy", "others_busy"]

P = ParamSpec("P")
R = TypeVar("R")

_STAT = Path("/proc/stat")
#: Seconds between two looks below which the last verdict stands (too short to measure).
_MIN_WINDOW = 0.25
#: Cores that other processes must keep busy before a fit gets one thread.
BUSY_CORES = 0.5


def _machine_busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot, or None off Linux."""
    try:
        with _STAT.open() as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    ticks = [int(v) for v in fields[1:9]]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Contention:
    """Cores used by other processes since the previous :meth:`others` (or since creation)."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), _machine_busy_seconds(), _own_seconds())
        self._others = 0.0

    def others(self) -> float:
        """Cores other processes kept busy, on average, since the last look."""
        now, machine, own = time.monotonic(), _machine_busy_seconds(), _own_seconds()
        then, machine0, own0 = self._last
        if machine is None or machine0 is None:
            return 0.0
        if now - then >= _MIN_WINDOW:
            # Tick rounding can make it slightly negative on an idle machine.
            self._others = max(0.0, ((machine - machine0) - (own - own0)) / (now - then))
            self._last = (now, machine, own)
        return self._others

    def busy(self) -> bool:
        """Whether other processes keep at least :data:`BUSY_CORES` cores busy."""
        return self.others() >= BUSY_CORES


_shared: Contention | None = None


def others_busy() -> bool:
    """Whether other processes kept the cores busy since the process's last look (the
    first look starts the measure and says no)."""
    global _shared
    if _shared is None:
        _shared = Contention()
        return False
    return _shared.busy()


def one_thread_when_busy(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with one OpenMP thread when other processes keep the cores busy (its
    HistGradientBoosting predictions spin otherwise: the report's four predictions of 500
    hpc_jobs rows took 7.6 s beside a second training)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not others_busy():
            return func(*args, **kwargs)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):
            return func(*args, **kwargs)

    return wrapper
