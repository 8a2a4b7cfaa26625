"""Issue 15: a run whose test score falls outside the range its CV predicted is not made
champion without ``--force``, and ``mlwright train`` says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlwright.cli import app
from mlwright.registry import Registry

# slow: trains and registers through the CLI.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from mlwright.datasets import load_suite

    df = load_suite("telco_churn", nrows=900)
    root = tmp_path_factory.mktemp("promotion")
    train, test = df.iloc[:600], df.iloc[600:].copy()
    train.to_csv(root / "train.csv", index=False)
    # The same held-out rows with every label swapped: a test the model cannot pass.
    test["churn"] = test["churn"].map({"Yes": "No", "No": "Yes"})
    test.to_csv(root / "swapped.csv", index=False)
    return root / "train.csv", root / "swapped.csv"


def _train(train: Path, test: Path, store: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, [
        "train", str(train), "--target", "churn", "--trials", "2", "--families",
        "lightgbm,linear", "--budget", "60", "--test", str(test), "--out", str(out),
        "--store", str(store), "--name", "churn", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # Rich wraps lines


def test_a_test_score_outside_the_cv_range_is_not_made_champion(tables, tmp_path) -> None:
    train, swapped = tables
    store = tmp_path / "store"
    out = _train(train, swapped, store, tmp_path / "run")
    assert "outside" in out and "Not promoted to champion" in out
    assert "--force" in out and "mlwright models promote churn" in out
    reg = Registry(f"sqlite:///{(store / 'mlflow.db').resolve().as_posix()}")
    (info,) = reg.list("churn")
    assert info.aliases == ["challenger"]  # the first version, and still no champion


def test_force_registers_it_as_usual(tables, tmp_path) -> None:
    train, swapped = tables
    store = tmp_path / "forced"
    out = _train(train, swapped, store, tmp_path / "forced_run", "--force")
    assert "--force" in out and "outside" in out and "Not promoted" not in out
    reg = Registry(f"sqlite:///{(store / 'mlflow.db').resolve().as_posix()}")
    assert reg.list("churn")[0].aliases == ["champion"]
