"""How the command line is put together: every command group registered explicitly and in
order, ``--help`` of each works, no import cycle, no state shared between invocations."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import mlwright.cli as cli_package
from mlwright.cli import app, main
from mlwright.cli.app import COMMANDS, build_app
from mlwright.exceptions import ConfigError

# The order of `mlwright --help`: plain commands first, then the sub-apps.
COMMAND_NAMES = ["init", "profile", "contract", "validate", "fingerprint", "run", "retrain",
                 "reproduce", "monitor", "predict", "export", "report", "serve", "train",
                 "ui"]
GROUPS = {"models": ["list", "show", "promote", "rollback", "diff", "delete", "audit"],
          "keys": ["create", "revoke", "list"]}
CLI_ROOT = Path(cli_package.__file__).parent
MODULES = sorted(p.stem for p in CLI_ROOT.glob("*.py") if p.stem != "__init__")


def _names(typer_app: typer.Typer) -> tuple[list[str], dict[str, list[str]]]:
    commands = [c.name or c.callback.__name__ for c in typer_app.registered_commands
                if c.callback is not None]
    groups = {g.name or "": [c.name or c.callback.__name__
                             for c in g.typer_instance.registered_commands
                             if c.callback is not None]
              for g in typer_app.registered_groups if g.typer_instance is not None}
    return commands, groups


def test_every_command_group_is_registered_in_order() -> None:
    commands, groups = _names(app)
    assert commands == COMMAND_NAMES
    assert groups == GROUPS
    assert all(callable(getattr(module, "register", None)) for module in COMMANDS)
    assert _names(build_app()) == (commands, groups)  # a new app: the same, built again


@pytest.mark.parametrize("args", [[], *([c] for c in COMMAND_NAMES), *([g] for g in GROUPS),
                                  *([g, c] for g, cs in GROUPS.items() for c in cs)],
                         ids=lambda args: " ".join(args) or "mlwright")
def test_help_of_each_command(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_command_modules_never_import_the_app() -> None:
    """The old cycle: command modules imported the app to decorate their commands."""
    for module in MODULES:
        if module == "app":
            continue
        tree = ast.parse((CLI_ROOT / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                assert node.module not in ("mlwright.cli", "mlwright.cli.app"), module
            if isinstance(node, ast.Import):
                assert all(a.name != "mlwright.cli.app" for a in node.names), module


@pytest.mark.parametrize("module", ["train", "data", "serve", "models", "_common"])
def test_a_command_module_imports_alone(module: str) -> None:
    code = (f"import mlwright.cli.{module} as m, sys; "
            f"assert 'register' in dir(m) or m.__name__.endswith('_common')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "mlwright", "--version"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stdout.startswith("mlwright "), result.stderr


def test_debug_lives_in_one_invocation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "mlwright.toml"
    existing.write_text("")
    args = ["init", str(tmp_path / "data.csv"), "--target", "y", "--output", str(existing)]
    monkeypatch.setattr(sys, "argv", ["mlwright", "--debug", *args])
    with pytest.raises(ConfigError):  # --debug: the exception itself, for its traceback
        main()
    monkeypatch.setattr(sys, "argv", ["mlwright", *args])
    with pytest.raises(SystemExit) as exited:  # the next invocation: no --debug left over
        main()
    assert exited.value.code == ConfigError.exit_code
    assert "Error:" in capsys.readouterr().err


def _train_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    import time

    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mlwright", "train", *args],
                            capture_output=True, text=True, timeout=300, check=False)
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def telco_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlwright.datasets import load_suite

    path = tmp_path_factory.mktemp("data") / "telco.csv"
    load_suite("telco_churn", nrows=400).to_csv(path, index=False)
    return path


def test_a_wrong_sensitive_column_fails_before_training(telco_csv: Path, tmp_path: Path
                                                         ) -> None:
    """Issue 14 point 11: it trained for the whole budget, saved the run, then exited 2."""
    out = tmp_path / "run"
    result, seconds = _train_cli(str(telco_csv), "-t", "churn", "--budget", "120",
                                 "--sensitive", "nosuchcol", "--no-register", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert "sensitive column 'nosuchcol' is not in the table" in result.stderr
    assert seconds < 60 and not out.exists()  # no trial ran, nothing was saved


def test_a_test_table_without_the_target_fails_before_training(telco_csv: Path,
                                                               tmp_path: Path) -> None:
    import pandas as pd

    test = tmp_path / "no_target.csv"
    pd.read_csv(telco_csv).drop(columns="churn").head(50).to_csv(test, index=False)
    out = tmp_path / "run"
    result, seconds = _train_cli(str(telco_csv), "-t", "churn", "--budget", "120",
                                 "--test", str(test), "--no-register", "--out", str(out))
    assert result.returncode == 2, result.stderr
    err = " ".join(result.stderr.split())
    assert f"--test {test}" in err and "target column 'churn' is not in the table" in err
    assert seconds < 60 and not out.exists()


def test_train_records_the_budget_the_user_gave(telco_csv: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14 point 13: ``--budget 20`` was recorded as ``time_budget=19.87...`` (what was
    left after reading the table); the time spent reading is passed as ``started_at``.
    Issue 15: the command, not only the search, keeps to --budget, so training gets the
    budget less what the report needs; the record still says 20."""
    import json
    import time

    import mlwright.api
    from mlwright.cli.train import after_training_seconds

    seen: dict[str, object] = {}
    real_train = mlwright.api.train

    def one_trial(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return real_train(*args, **{**kwargs, "n_trials": 1, "families": ["linear"]})

    monkeypatch.setattr(mlwright.api, "train", one_trial)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(telco_csv), "-t", "churn", "--budget", "20",
                                      "--no-register", "--out", str(out)])
    assert result.exit_code == 0, result.output
    kept = after_training_seconds(20.0, register=False)
    assert 0 < kept <= 4.0 and seen["time_budget"] == 20.0 - kept
    assert isinstance(seen["started_at"], float) and seen["started_at"] <= time.monotonic()
    assert f"{kept:.2g} s of --budget 20 kept for the report" in " ".join(result.output.split())
    assert json.loads((out / "metrics.json").read_text())["params"]["time_budget"] == 20.0


def test_an_overrun_training_shortens_the_explanations_not_the_deadline() -> None:
    """Issue 15: on a busy machine the search and refit overran, and the report's full
    explanation time came on top (36.9 s for --budget 30)."""
    from mlwright.cli.train import after_training_seconds, explain_seconds_for, explain_seconds_left

    budget = 30.0
    on_time = budget - after_training_seconds(budget, register=True)
    assert explain_seconds_left(budget, on_time, register=True) == explain_seconds_for(budget)
    # Every second of overrun comes out of the explanations...
    late = explain_seconds_left(budget, on_time + 2.0, register=True)
    assert late == pytest.approx(explain_seconds_for(budget) - 2.0)
    # ...down to the floor, which a far later end still gets.
    floor = explain_seconds_for(0.0)
    assert explain_seconds_left(budget, budget + 10.0, register=True) == floor > 0
    # Without registration its second goes to the explanations, up to their share.
    assert explain_seconds_left(budget, on_time + 2.0, register=False) == pytest.approx(
        min(explain_seconds_for(budget), late + 1.0))


def test_reproduce_blames_other_data_before_the_time_budget() -> None:
    """Issue 14 point 12: "same data: no", then "trained on a time budget" as the cause."""
    from mlwright.cli.models import _why_not_reproduced
    from mlwright.registry.reproduce import Reproduction

    def rep(given: str, n_trials: int | None) -> Reproduction:
        return Reproduction("telco/1", "roc_auc", 0.84, 0.80, 0.01, "sha256:" + "a" * 64,
                            given, {"time_budget": 20.0, "n_trials": n_trials})

    other = _why_not_reproduced(rep("sha256:" + "b" * 64, None))
    assert "data differ" in other and "time budget" not in other
    same = _why_not_reproduced(rep("sha256:" + "a" * 64, None))
    assert "time budget" in same
    assert _why_not_reproduced(rep("sha256:" + "a" * 64, 5)) == ""


@pytest.mark.parametrize("command", [["serve"], ["train"], ["monitor"], ["models", "delete"]])
def test_help_shows_no_type_on_flags(command: list[str]) -> None:
    """Issue 14 point 13: every flag read ``<bool>``; serve's --config help lost
    "[serve]" and "[store]" to Rich markup."""
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--help" in result.output
    assert "<bool>" not in result.output
    if command == ["serve"]:
        assert "mlwright.toml to read [serve] and [store] from" in result.output


@pytest.mark.parametrize(("option", "message"), [
    (["--threshold", "nosuch"], "threshold must be a number, 'f1' or 'balanced_accuracy'"),
    (["--threshold", "1.5"], "threshold must be between 0 and 1"),
    (["--class-weight", "nosuch"], "class_weight must be None, 'balanced' or a dict"),
])
def test_search_options_fail_before_the_first_trial(telco_csv: Path, tmp_path: Path,
                                                    option: list[str], message: str) -> None:
    """A bad --threshold failed after the whole search; a bad --class-weight was accepted
    (the families that took it failed each trial, the others trained)."""
    out = tmp_path / "run"
    result, seconds = _train_cli(str(telco_csv), "-t", "churn", "--budget", "120", *option,
                                 "--no-register", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split())
    assert seconds < 60 and not out.exists()
