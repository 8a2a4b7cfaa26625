"""``mlwright train`` registers; ``mlwright models ...`` and ``mlwright reproduce``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlwright.cli import app
from mlwright.exceptions import RegistryError
from mlwright.registry import Registry

# slow: trains and registers through the CLI.
pytestmark = pytest.mark.slow

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def cli_store(small_run, tmp_path_factory) -> tuple[Path, Path]:
    _, folder, _ = small_run
    root = tmp_path_factory.mktemp("cli")
    store = root / "store"
    csv = folder.parent / "telco.csv"
    for i in range(2):
        invoke("train", str(csv), "--target", "churn", "--trials", "2", "--families",
               "lightgbm,linear", "--budget", "60", "--n-jobs", "1", "--out",
               str(root / f"run{i}"), "--store", str(store), "--name", "telco")
    return store, csv


def test_train_registers_and_models_list_show(cli_store) -> None:
    store, _ = cli_store
    out = invoke("models", "list", "--store", str(store))
    assert "telco" in out and "champion" in out and "challenger" in out
    out = invoke("models", "show", "telco@challenger", "--store", str(store))
    assert "telco/2" in out and "data fingerprint" in out and "cv_roc_auc" in out
    reg = Registry(f"sqlite:///{(store / 'mlflow.db').resolve().as_posix()}")
    run = reg.client.get_run(reg.show("telco/1").run_id)
    assert run.data.params["config.trials"] == "2"


def test_train_registers_in_its_worker_with_the_search_trials(cli_store) -> None:
    """MLflow is imported and the version logged in mlwright.cli.register_worker, not in the
    command's process, and the trials of the live search still reach the run."""
    import os

    import pandas as pd

    from mlwright.registry.tracking import TAG_PID

    store, _ = cli_store
    reg = Registry(f"sqlite:///{(store / 'mlflow.db').resolve().as_posix()}")
    run_id = reg.show("telco/2").run_id
    run = reg.client.get_run(run_id)
    assert run.data.tags[TAG_PID] != str(os.getpid())
    trials = pd.read_csv(reg.client.download_artifacts(run_id, "trials.csv"))
    assert len(trials) == 2 and set(trials["family"]) <= {"lightgbm", "linear"}
    assert trials["loss"].notna().all()


def test_promote_rollback_audit_diff_delete(cli_store) -> None:
    store, _ = cli_store
    s = ("--store", str(store))
    assert "was 1" in invoke("models", "promote", "telco", "2", "--reason", "better", *s)
    assert "-> 1" in invoke("models", "rollback", "telco", *s)
    out = invoke("models", "audit", "telco", *s)
    assert "promote" in out and "rollback" in out and "better" in out
    assert "…" not in out  # names fold, never truncated (issue 14 point 13)
    out = invoke("models", "diff", "telco", "1", "2", *s)
    assert "same" in out and "cv_roc_auc" in out and "…" not in out
    result = runner.invoke(app, ["models", "delete", "telco", "1", "--yes", *s])
    # main() turns this error into one paragraph and exit code 2
    assert isinstance(result.exception, RegistryError)
    assert "is the champion" in str(result.exception)


def test_reproduce_matches_a_trial_limited_version(cli_store) -> None:
    store, csv = cli_store
    out = invoke("reproduce", "telco/1", "--data", str(csv), "--store", str(store))
    assert "Reproduced" in out and "same data" in out and "yes" in out
