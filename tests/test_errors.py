"""Every user-facing failure of the real CLI: one paragraph on stderr, exit code 2, no traceback.

Each test runs the installed ``mlwright`` command in a child process, exactly as a user would,
and checks that the message names the thing at fault (file, column, table, version) and says
how to fix it. ``--debug`` is the one way to get the traceback.

"Unreadable file": the tests run as root, for whom ``chmod 000`` does not stop reading, so the
unreadable inputs are ones no permission bit can fake: random bytes named ``.parquet``, binary
bytes named ``.csv``, and a folder given where a file is expected.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _command() -> list[str]:
    script = Path(sys.executable).with_name("mlwright")
    if script.exists():
        return [str(script)]
    found = shutil.which("mlwright")
    return [found] if found else [sys.executable, "-c", "from mlwright.cli import main; main()"]


def mlwright(*args: str | Path, cwd: Path,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*_command(), *map(str, args)], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def assert_clear_failure(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, one paragraph starting 'Error:' on stderr, no traceback; returns the message."""
    message = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert message.startswith("Error: "), message
    assert "\n" not in message, f"more than one paragraph: {message!r}"
    for needle in needles:
        assert needle in message, (needle, message)
    return message


@pytest.fixture()
def telco_csv(telco: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "telco.csv"
    telco.to_csv(path, index=False)
    return path


@pytest.fixture()
def telco_db(telco: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "telco.db"
    with sqlite3.connect(path) as conn:
        telco.to_sql("customers", conn, index=False)
    return path


def test_missing_file(tmp_path: Path) -> None:
    result = mlwright("init", "nowhere.csv", "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, "'nowhere.csv'", "No file", "Check the path")


def test_random_bytes_named_parquet(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(np.random.default_rng(0).bytes(4096))
    result = mlwright("init", "broken.parquet", "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, "'broken.parquet'", "Parquet", "Check that it is")


def test_binary_file_named_csv(tmp_path: Path) -> None:
    (tmp_path / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    result = mlwright("init", "photo.csv", "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, "'photo.csv'", "binary data", "extension")


@pytest.mark.parametrize("name", ["exports", "exports.csv"])
def test_folder_instead_of_a_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    (tmp_path / name / "notes.txt").write_text("not a table\n")
    result = mlwright("init", name, "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, f"'{name}'", "folder", "give the path of a")


@pytest.mark.parametrize("command", ["init", "profile", "contract"])
def test_unknown_target_suggests_the_close_match(telco_csv: Path, command: str) -> None:
    result = mlwright(command, telco_csv.name, "--target", "Churn", cwd=telco_csv.parent)
    assert_clear_failure(result, "'Churn'", "Did you mean 'churn'?", "'tenure'")


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    result = mlwright("init", "empty.csv", "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, "'empty.csv'", "empty", "expected a header row")


def test_header_without_rows(telco: pd.DataFrame, tmp_path: Path) -> None:
    telco.head(0).to_csv(tmp_path / "header.csv", index=False)
    result = mlwright("init", "header.csv", "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, "header.csv", "no rows", "at least one row")


@pytest.mark.parametrize("command", ["init", "contract"])
def test_target_missing_everywhere(telco: pd.DataFrame, tmp_path: Path, command: str) -> None:
    df = telco.assign(churn=np.nan)
    df.to_csv(tmp_path / "unlabelled.csv", index=False)
    result = mlwright(command, "unlabelled.csv", "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, "'churn'", f"missing in all {len(df)} rows",
                         "Check that the right column")


@pytest.mark.parametrize("command", ["init", "profile"])
def test_target_with_a_single_class(telco: pd.DataFrame, tmp_path: Path, command: str) -> None:
    stayed = telco[telco["churn"] == "No"]
    stayed.to_csv(tmp_path / "stayed.csv", index=False)
    result = mlwright(command, "stayed.csv", "--target", "churn", cwd=tmp_path)
    assert_clear_failure(result, "'churn'", "single value", "'No'", "at least two classes")


def test_unknown_database_kind(tmp_path: Path) -> None:
    result = mlwright("init", "notadb://host/db", "--table", "t", "--target", "y", cwd=tmp_path)
    assert_clear_failure(result, "'notadb://host/db'", "not a usable SQLAlchemy URL",
                         "sqlite:///path/to/file.db")


def test_sqlite_file_that_does_not_exist(tmp_path: Path) -> None:
    result = mlwright("init", "sqlite:///nope.db", "--table", "t", "--target", "y", cwd=tmp_path)
    assert_clear_failure(result, "'nope.db'", "No SQLite database", "four slashes")


def test_database_driver_not_installed(tmp_path: Path) -> None:
    # `make test` installs psycopg (the PostgreSQL tests need it): the command runs with
    # packages first on its path that fail to import as an absent package does.
    absent = tmp_path / "absent"
    for name in ("psycopg", "psycopg2"):
        (absent / name).mkdir(parents=True)
        (absent / name / "__init__.py").write_text(
            f'raise ModuleNotFoundError("No module named {name!r}", name={name!r})\n')
    path = os.pathsep.join(p for p in (str(absent), os.environ.get("PYTHONPATH")) if p)
    url = "postgresql://analyst:s3cret@db.example.com/sales"
    result = mlwright("init", url, "--table", "orders", "--target", "y", cwd=tmp_path,
                      env={"PYTHONPATH": path})
    message = assert_clear_failure(result, "postgresql://analyst:***@db.example.com/sales",
                                   "not installed", "pip install 'mlwright[postgres]'")
    assert "s3cret" not in message


def test_query_on_an_unknown_table(telco_db: Path) -> None:
    result = mlwright("init", f"sqlite:///{telco_db.name}", "--query",
                      "SELECT * FROM custmers", "--target", "churn", cwd=telco_db.parent)
    assert_clear_failure(result, "'SELECT * FROM custmers'", "no such table: custmers",
                         "Tables in the database: 'customers'")


def test_unknown_table_name_suggests_the_close_match(telco_db: Path) -> None:
    result = mlwright("init", f"sqlite:///{telco_db.name}", "--table", "Customer",
                      "--target", "churn", cwd=telco_db.parent)
    assert_clear_failure(result, "No table 'Customer'", "Did you mean 'customers'?")


def test_sql_source_without_table_or_query(telco_db: Path) -> None:
    result = mlwright("init", f"sqlite:///{telco_db.name}", "--target", "churn",
                      cwd=telco_db.parent)
    assert_clear_failure(result, "needs a table or a query", "--table", "--query")


def test_contract_of_another_version(telco_csv: Path) -> None:
    contract = telco_csv.parent / "future.json"
    contract.write_text(json.dumps({"format": "mlwright.contract", "version": 999}))
    result = mlwright("validate", telco_csv.name, "--contract", contract.name,
                      cwd=telco_csv.parent)
    assert_clear_failure(result, "'future.json'", "version 999", "mlwright contract")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = mlwright("--debug", "init", "nowhere.csv", "--target", "churn", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "DataSourceError" in result.stderr and "nowhere.csv" in result.stderr


def test_a_clean_run_prints_no_error(telco_csv: Path) -> None:
    # The counterpart of the failures above: the same command on good input succeeds.
    result = mlwright("init", telco_csv.name, "--target", "churn", "-o", "project.toml",
                      cwd=telco_csv.parent)
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr
    assert 'target = "churn"' in (telco_csv.parent / "project.toml").read_text()
