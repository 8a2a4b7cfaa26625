"""``mlwright run`` as a service: the server answers (with the retrain webhook), the loop
passes, and SIGTERM stops everything cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlwright.config import ServeConfig, render_config
from mlwright.loop.runner import open_registry
from mlwright.registry.audit import AuditLog

# slow: `mlwright run` as a process: it serves, runs passes, stops on SIGTERM.
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_passes_and_stops_on_sigterm(make_project: Any, weak: Any,
                                                tmp_path: Path) -> None:
    from mlwright.serve.keys import create_key

    config = make_project(weak, traffic=False)
    port = _free_port()
    config = config.model_copy(update={
        "serve": ServeConfig(port=port),
        "loop": config.loop.model_copy(update={"check_every": "1s"})})
    path = tmp_path / "mlwright.toml"
    path.write_text(render_config(config))
    _, key = create_key(config.store.database_url(), "ci")
    proc = subprocess.Popen([sys.executable, "-m", "mlwright", "run", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        assert httpx.post(f"{base}/v1/hooks/retrain").status_code == 401
        record = {"female": 0, "senior_citizen": 0, "partner": 1, "dependents": 0,
                  "phone_service": 1, "multiple_lines": "No", "online_backup": "No",
                  "device_protection": "No", "streaming_tv": "No", "streaming_movies": "No",
                  "paperless_billing": 1, "monthly_charges": 70.0}
        answer = httpx.post(f"{base}/v1/predict", json=record, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == "1"
        hook = httpx.post(f"{base}/v1/hooks/retrain", json={"reason": "from CI"},
                          headers={"X-API-Key": key})
        assert hook.status_code == 202
        audit = AuditLog(config.store.database_url())
        while not any(e["action"] == "retrain_started" for e in audit.entries("churn")):
            assert proc.poll() is None and time.monotonic() < deadline + 120
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "Stopped." in out and "No trigger fired" in out
    with socket.socket() as s:  # the server process is gone: the port is free again
        s.bind(("127.0.0.1", port))
    # SIGTERM during the retrain killed the worker: audited, nothing registered.
    actions = [e["action"] for e in AuditLog(config.store.database_url()).entries("churn")]
    assert actions[-2:] == ["retrain_started", "retrain_failed"]
    assert [v.version for v in open_registry(config).list("churn")] == ["1"]
