"""The process entry points end with ``exit_now`` (no interpreter teardown): what an exit
must do still happens, and the status is the command's."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit, sys
from concurrent.futures import ThreadPoolExecutor
from mlwright.cli._common import exit_now

pool = ThreadPoolExecutor(2)          # an idle non-daemon worker, as the tree walk keeps
assert pool.submit(lambda: 41).result() == 41
atexit.register(lambda: print("atexit ran", flush=False))
sys.stdout.write("unflushed ")
exit_now(3)
"""


def test_exit_now_stops_idle_pools_runs_atexit_and_flushes() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "unflushed atexit ran\n"


def test_the_command_exits_with_its_status() -> None:
    ok = subprocess.run([sys.executable, "-m", "mlwright", "--version"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("mlwright ")
    bad = subprocess.run([sys.executable, "-m", "mlwright", "no-such-command"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no-such-command" in bad.stderr
