"""``mlwright monitor`` on a real log."""

from __future__ import annotations

import json
import subprocess
import sys

from monitor_replay import log_rows
from typer.testing import CliRunner

from mlwright.cli import app
from mlwright.store import open_database
from telco_drift import shifted  # tests/telco_drift.py


def test_monitor_command_prints_a_summary_and_writes_the_report(holdout_run, tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log_rows(open_database(url), holdout_run, shifted(holdout_run.test.iloc[:500]))
    out, js = tmp_path / "report.html", tmp_path / "report.json"
    result = CliRunner().invoke(app, ["monitor", "telco", "--window", "500", "--db", url,
                                      "--reference", str(holdout_run.folder), "--out", str(out),
                                      "--json", str(js), "--no-alerts"])
    assert result.exit_code == 0, result.output
    assert "2 of 19 features drifted" in result.output
    assert "monthly_charges" in result.output and out.exists()

    def refuse(token: str) -> None:
        raise ValueError(f"--json wrote {token}: not JSON")

    written = json.loads(js.read_text(), parse_constant=refuse)  # strict JSON
    assert sorted(written["drifted_features"]) == ["contract", "monthly_charges"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # main() turns MlwrightError into one paragraph and exit code 2: run the real entry point.
    return subprocess.run([sys.executable, "-m", "mlwright", *args], capture_output=True,
                          text=True, timeout=300)


def test_monitor_command_errors_are_one_paragraph(holdout_run, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = _cli("monitor", "nobody", "--db", url, "--reference", str(holdout_run.folder))
    assert result.returncode == 2
    assert "No logged predictions of model 'nobody'" in result.stderr
    assert "Traceback" not in result.stderr
    bad = _cli("monitor", "telco", "--db", url, "--window", "soon", "--reference",
               str(holdout_run.folder))
    assert bad.returncode == 2 and "row count (5000) or a duration" in bad.stderr


def test_monitor_of_a_version_never_logged_names_the_logged_versions(holdout_run, tmp_path):
    """Issue 14 point 12: ``GET /v1/monitor?version=99`` said "Serve it first" although the
    model had many predictions (of other versions)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from mlwright.monitor.routes import monitor_router

    url = f"sqlite:///{tmp_path / 'log.db'}"
    log_rows(open_database(url), holdout_run, holdout_run.test.iloc[:50], version="3")
    app = FastAPI()
    app.include_router(monitor_router(url, "telco", holdout_run.folder))
    client = TestClient(app)
    answer = client.get("/v1/monitor", params={"version": "99"})
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert "Version '99' of model 'telco' has no logged predictions" in detail
    assert "versions 3" in detail and "Serve it first" not in detail
    assert client.get("/v1/monitor", params={"version": "3"}).status_code == 200
