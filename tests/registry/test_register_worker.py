"""``mlwright train``'s registration worker (mlwright.cli.register_worker): a version or
the registry's error comes back from it; a worker that is gone leaves the registration to
the command's own process."""

from __future__ import annotations

import os
import shutil

import pytest
from registry_helpers import sqlite_uri

from mlwright.cli.models import register_training
from mlwright.cli.register_worker import RegistrationWorker
from mlwright.exceptions import RegistryError
from mlwright.registry import Registry
from mlwright.registry.tracking import TAG_PID, trials_table
from mlwright.run import RunFolder

# slow: each worker is a Python process importing MLflow (2-3 s).
pytestmark = pytest.mark.slow


def _pid(registry: Registry, ref: str) -> str:
    return registry.client.get_run(registry.show(ref).run_id).data.tags[TAG_PID]


def test_the_worker_registers_and_answers_the_version(small_run, tmp_path) -> None:
    result, folder, _ = small_run
    uri = sqlite_uri(tmp_path)
    worker = RegistrationWorker(uri)
    try:
        done = worker.register(folder, name="telco", config={"budget": 5}, alias=None,
                               trials=trials_table(result))
    finally:
        worker.close()
    assert done is not None
    assert (done["name"], done["version"], done["aliases"]) == ("telco", "1", ["champion"])
    registry = Registry(uri)
    assert _pid(registry, "telco/1") not in ("", str(os.getpid()))
    assert registry.client.get_run(registry.show("telco/1").run_id).data.params[
        "config.budget"] == "5"


def test_a_registration_error_in_the_worker_is_raised_in_the_command(small_run,
                                                                   tmp_path) -> None:
    _, folder, _ = small_run
    broken = tmp_path / "run"
    shutil.copytree(folder, broken)
    (broken / RunFolder.MODEL).unlink()
    worker = RegistrationWorker(sqlite_uri(tmp_path / "store"))
    try:
        with pytest.raises(RegistryError, match=f"holds no {RunFolder.MODEL}"):
            worker.register(broken, name="telco", config={}, alias=None, trials=None)
    finally:
        worker.close()


def test_a_worker_gone_before_the_job_leaves_it_to_the_command(small_run, tmp_path,
                                                                caplog) -> None:
    result, folder, _ = small_run
    worker = RegistrationWorker(sqlite_uri(tmp_path))
    worker._proc.kill()  # type: ignore[union-attr]
    worker._proc.wait()  # type: ignore[union-attr]
    register_training(result, folder, name="telco", store=str(tmp_path), config={},
                      worker=worker)
    assert "ended without registering" in caplog.text
    assert _pid(Registry(sqlite_uri(tmp_path)), "telco/1") == str(os.getpid())
