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


def test_one_store_url_names_the_project_database_and_mlflows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlwright.config import StoreConfig

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://elsewhere:5000")
    store = StoreConfig(root=tmp_path, url="postgresql://u@db:5432/mlw")
    assert store.database_url() == "postgresql+psycopg://u@db:5432/mlw"
    assert store.resolved_tracking_uri() == (
        "postgresql+psycopg://u@db:5432/mlw?options=-csearch_path%3Dmlflow")
    # The folder store is unchanged: sqlite files in root, MLFLOW_TRACKING_URI still read.
    plain = StoreConfig(root=tmp_path)
    assert plain.database_url() == f"sqlite:///{(tmp_path / 'mlwright.db').as_posix()}"
    assert plain.resolved_tracking_uri() == "http://elsewhere:5000"
    # --store: a URL replaces every location, a folder means the sqlite store in it.
    assert store.with_option(str(tmp_path / "b")).database_url().endswith("/b/mlwright.db")
    assert plain.with_option("postgresql://u@h/x").database_url() \
        == "postgresql+psycopg://u@h/x"
    assert plain.with_option(None) is plain
    assert StoreConfig(artifacts="s3://bucket/m").artifact_location() == "s3://bucket/m"


def test_a_store_url_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mlwright.toml"
    path.write_text('[project]\nname = "x"\n[data]\nsource = "a.csv"\ntarget = "y"\n'
                    '[store]\nurl = "/srv/db"\n')
    with pytest.raises(ConfigError, match=r"store\.url: .*must be a database URL such as "
                       r"postgresql://"):
        load_config(path)
