"""MLflow's registry and the project database in one PostgreSQL database, through the same
code paths as the sqlite store: one URL (mlwright.toml's store.url or --store)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from mlwright.config import StoreConfig
from mlwright.store import metadata, mlflow_uri


@pytest.mark.slow
def test_one_url_holds_the_registry_and_the_project_database(
        pg_url: str, telco_trained: tuple[Any, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlwright.registry import Registry, load_model

    monkeypatch.chdir(tmp_path)
    store = StoreConfig(url=pg_url.replace("postgresql+psycopg://", "postgresql://"))
    reg = Registry(store.resolved_tracking_uri())
    assert reg.database_url == pg_url == store.database_url()
    result, telco_run = telco_trained
    first = reg.register(result, telco_run, name="telco")
    second = reg.register(result, telco_run, name="telco")
    assert (first.aliases, second.aliases) == (["champion"], ["challenger"])
    reg.promote("telco", "2", reason="test")
    assert load_model("telco@champion", tracking_uri=reg.tracking_uri).version == "2"
    assert [(e["action"], e["version"]) for e in reg.audit.entries("telco")] == [
        ("register", "1"), ("register", "2"), ("promote", "2")]
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        schemas = dict(conn.execute(text(
            "SELECT table_schema, count(*) FROM information_schema.tables WHERE "
            "table_schema IN ('public', 'mlflow') GROUP BY 1")).all())
        audited = conn.execute(text("SELECT count(*) FROM public.audit")).scalar()
    engine.dispose()
    assert schemas["public"] == len(metadata.tables) and schemas["mlflow"] > 20
    assert audited == 3
    # The model files live in the store's artifact folder (store.artifacts; here the default).
    assert (tmp_path / ".mlwright" / "artifacts").is_dir()
    # The command line names the same store with --store URL.
    listed = subprocess.run(
        [sys.executable, "-m", "mlwright", "models", "list", "--store",
         pg_url.replace("postgresql+psycopg://", "postgresql://")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    assert "telco" in listed.stdout and "champion" in listed.stdout


def _train(cwd: Path, i: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from mlwright.cli import main; main()", "train", "telco.csv",
         "--target", "churn", "--budget", "20", "--trials", "2", "--families", "linear",
         "--cv", "3", "--n-jobs", "1", "--seed", str(i), "--out", f"runs/{i}"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_eight_concurrent_trainings_make_one_champion(
        pg_url: str, telco_pg: pd.DataFrame, tmp_path: Path) -> None:
    """Eight `mlwright train` processes at once against a new PostgreSQL store (named once,
    in mlwright.toml): every one succeeds, every version is registered and audited, and
    exactly one became champion."""
    from mlwright.registry import Registry

    telco_pg.iloc[:400].to_csv(tmp_path / "telco.csv", index=False)
    (tmp_path / "mlwright.toml").write_text(
        f'[project]\nname = "telco"\n[data]\nsource = "telco.csv"\ntarget = "churn"\n'
        f'[store]\nurl = "{pg_url}"\nartifacts = "{(tmp_path / "shared").as_posix()}"\n')
    processes = [_train(tmp_path, i) for i in range(8)]
    outputs = [p.communicate(timeout=600)[0].decode(errors="replace") for p in processes]
    failed = [(i, out[-2000:]) for i, (p, out) in enumerate(zip(processes, outputs,
                                                                  strict=True)) if p.returncode]
    assert not failed
    reg = Registry(mlflow_uri(pg_url))
    versions = reg.list("telco")
    assert sorted(int(v.version) for v in versions) == list(range(1, 9))
    assert sum("champion" in v.aliases for v in versions) == 1
    audit = reg.audit.entries("telco")
    assert sorted(int(e["version"]) for e in audit if e["action"] == "register") \
        == list(range(1, 9))
    assert [e["evidence"]["alias"] for e in audit].count("champion") == 1
    assert all(Path(v.source.removeprefix("file://")).is_relative_to(tmp_path / "shared")
               for v in versions)
