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
                 "reproduce", "monitor", "report", "serve", "train"]
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
