"""Two registrations at once on one sqlite store, and ``kill -9`` at several moments of
logging and registering: the store stays usable and holds no version that cannot load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from registry_helpers import sqlite_uri

from mlwright.registry import Registry

# slow: registrations in processes killed at each step.
pytestmark = pytest.mark.slow

# Loads the trained result and registers it. MARK names an MlflowClient method: the script
# prints a line when that method is entered, so the test can kill it right there.
SCRIPT = """
import sys, time, joblib
from pathlib import Path
uri, pickled, folder, mark, go = sys.argv[1:6]
from mlflow import MlflowClient
from mlwright.registry import Registry
if mark != "-":
    original = getattr(MlflowClient, mark)
    def hooked(self, *a, **k):
        print("IN", mark, flush=True)
        return original(self, *a, **k)
    setattr(MlflowClient, mark, hooked)
result = joblib.load(pickled)
print("READY", flush=True)
while go != "-" and not Path(go).exists():
    time.sleep(0.01)
info = Registry(uri).register(result, Path(folder), name="churn")
print("DONE", info.version, flush=True)
"""


def start(uri: str, small_run, mark: str = "-", go: str = "-") -> subprocess.Popen:
    _, folder, pickled = small_run
    return subprocess.Popen([sys.executable, "-c", SCRIPT, uri, str(pickled), str(folder),
                             mark, go], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(proc: subprocess.Popen, prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"process ended before {prefix!r}: {proc.stderr.read()[-3000:]}")


def assert_usable(uri: str) -> list[str]:
    """Every listed version is either flagged incomplete or loads with verified hashes."""
    reg = Registry(uri)
    ready = []
    for info in reg.list():
        if info.status == "ready":
            loaded = reg.load(info.ref)
            assert loaded.version == info.version
            ready.append(info.version)
    return ready


def test_two_registrations_at_once(small_run, tmp_path: Path) -> None:
    uri = sqlite_uri(tmp_path / "store")  # neither process finds a store: both create it
    go = tmp_path / "go"
    procs = [start(uri, small_run, go=str(go)) for _ in range(2)]
    for p in procs:
        wait_for(p, "READY")
    go.touch()
    versions = sorted(wait_for(p, "DONE").split()[1] for p in procs)
    for p in procs:
        assert p.wait(timeout=300) == 0
    assert versions == ["1", "2"]
    assert sorted(assert_usable(uri)) == ["1", "2"]
    reg = Registry(uri)
    # Both found no champion; the alias lock lets exactly one take it.
    champion = reg.resolve("churn@champion")[1]
    challenger = reg.resolve("churn@challenger")[1]
    assert {champion, challenger} == {"1", "2"}
    entries = reg.audit.entries("churn")
    assert len(entries) == 2
    assert sorted(e["evidence"]["alias"] for e in entries) == ["challenger", "champion"]
    runs = reg.client.search_runs([reg.client.get_experiment_by_name("churn").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]


@pytest.mark.parametrize("mark", ["create_experiment", "log_batch", "log_artifacts",
                                  "create_model_version", "set_registered_model_alias",
                                  "set_terminated"])
def test_kill_9_while_registering_leaves_no_broken_version(small_run, tmp_path: Path,
                                                           mark: str) -> None:
    uri = sqlite_uri(tmp_path / "store")
    if mark != "create_experiment":  # one complete version first, except for a fresh store
        Registry(uri).register(small_run[0], small_run[1], name="churn")
    proc = start(uri, small_run, mark=mark)
    wait_for(proc, "IN")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = assert_usable(uri)
    # The store takes the next training as if nothing happened.
    reg = Registry(uri)
    info = reg.register(small_run[0], small_run[1], name="churn")
    assert info.status == "ready"
    after = assert_usable(uri)
    assert info.version in after and set(before) <= set(after)
    # The killed process's run is marked KILLED by that registration, not left RUNNING.
    runs = reg.client.search_runs([reg.client.get_experiment_by_name("churn").experiment_id])
    statuses = {r.data.tags.get("mlwright.pid"): r.info.status for r in runs}
    assert "RUNNING" not in statuses.values(), statuses
    if mark != "create_experiment":  # killed before any run existed
        assert statuses[str(proc.pid)] == "KILLED", statuses


def test_kill_9_while_creating_the_store(small_run, tmp_path: Path) -> None:
    uri = sqlite_uri(tmp_path / "store")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # no template yet
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mlwright.registry._store import client; "
         "import mlflow.store.tracking.sqlalchemy_store; "
         "print('START', flush=True); client(sys.argv[1])", uri],
        stdout=subprocess.PIPE, text=True, env=env)
    wait_for(proc, "START")
    time.sleep(1.0)  # imports done: inside MLflow's migrations of the private file
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    # Either no store was published, or a complete one: both work.
    info = Registry(uri).register(small_run[0], small_run[1], name="churn")
    assert info.version == "1" and assert_usable(uri) == ["1"]
