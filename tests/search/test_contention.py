"""The search's measure of other processes' CPU use (search/contention.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlwright.search.contention import BUSY_CORES, Contention, _machine_busy_seconds

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(),
                                reason="the measure reads Linux's /proc/stat")


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_another_process_spinning_is_contention() -> None:
    seen = Contention()
    spinner = subprocess.Popen([sys.executable, "-c",
                                "import time\nend = time.monotonic() + 3\n"
                                "while time.monotonic() < end: pass"])
    try:
        time.sleep(1.5)
        others = seen.others()
    finally:
        spinner.kill()
        spinner.wait()
    assert others >= BUSY_CORES
    assert seen.busy()


def test_own_work_is_not_counted() -> None:
    # The whole machine's busy cores over the window, less ours: our second of spinning
    # is the difference (whatever other processes do meanwhile).
    seen = Contention()
    t0, machine0 = time.monotonic(), _machine_busy_seconds()
    _spin(1.0)
    others = seen.others()
    t1, machine1 = time.monotonic(), _machine_busy_seconds()
    assert machine0 is not None and machine1 is not None
    everyone = (machine1 - machine0) / (t1 - t0)
    assert everyone - others >= 0.8


def test_a_look_too_soon_keeps_the_last_verdict() -> None:
    seen = Contention()
    time.sleep(0.3)
    first = seen.others()
    assert seen.others() == first  # no time has passed to measure


def test_one_thread_when_busy_limits_openmp_only_then(monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_info

    from mlwright.search import contention

    def openmp_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]

    limited = contention.one_thread_when_busy(openmp_threads)
    monkeypatch.setattr(contention, "others_busy", lambda: True)
    assert limited() and set(limited()) == {1}
    monkeypatch.setattr(contention, "others_busy", lambda: False)
    assert limited() == openmp_threads()
