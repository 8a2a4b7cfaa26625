"""mlwright.toml: `mlwright init` writes a commented file that load_config reads back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlwright.config import load_config
from mlwright.exceptions import ConfigError


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlwright", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_init_writes_a_commented_config_that_loads(telco, tmp_path):
    telco.to_csv(tmp_path / "churn.csv", index=False)
    done = _cli("init", "churn.csv", "--target", "churn", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "mlwright.toml").read_text()
    assert text.count("\n# ") >= 5  # settings are explained where they stand
    config = load_config(tmp_path / "mlwright.toml")
    assert config.name == "churn"
    assert config.data.source == "churn.csv" and config.data.target == "churn"
    assert config.train.time_budget == 60 and config.train.task == "auto"
    # Refuses to overwrite without --force.
    again = _cli("init", "churn.csv", "--target", "churn", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr


def test_invalid_settings_name_the_field(tmp_path):
    path = tmp_path / "mlwright.toml"
    path.write_text('[project]\nname = "x"\n[data]\nsource = "a.csv"\ntarget = "y"\n'
                    '[train]\ntime_budget = -5\n')
    with pytest.raises(ConfigError, match=r"train\.time_budget"):
        load_config(path)
    path.write_text('[project]\nname = "x"\n[data]\nsource = "a.csv"\ntarget = "y"\n'
                    '[train]\nbudget = 5\n')
    with pytest.raises(ConfigError, match=r"train\.budget"):
        load_config(path)
    path.write_text("[project\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="mlwright init"):
        load_config(tmp_path / "missing.toml")


def test_every_command_has_help(tmp_path):
    top = _cli("--help", cwd=tmp_path)
    assert top.returncode == 0
    commands = ["init", "profile", "contract", "validate", "fingerprint", "train"]
    for command in commands:
        assert command in top.stdout
        done = _cli(command, "--help", cwd=tmp_path)
        assert done.returncode == 0 and "Usage" in done.stdout, command
    version = _cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("mlwright ")
