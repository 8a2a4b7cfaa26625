"""A PostgreSQL restart while a server answers: /readyz says the database is down while it
is, every prediction answered before, during and after is logged exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from mlwright.store import open_database, predictions
from mlwright.testing.postgres import PostgresServer


def _ready(http: httpx.Client, want: str, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        answer = http.get("/readyz")
        if answer.json().get("status") == want:
            # Degraded is still ready: the replica answers while the database is down.
            assert answer.status_code == 200, answer.text
            return dict(answer.json())
        assert time.monotonic() < deadline, f"/readyz stayed {answer.status_code}: {answer.text}"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_restart_loses_no_answered_prediction(
        postgres: PostgresServer, pg_url: str, telco_run: Path,
        live_rows: list[dict[str, object]]) -> None:
    from serve_helpers import LiveServer

    from mlwright.serve.app import create_app

    app = create_app(telco_run, database_url=pg_url)
    answered: list[str] = []
    sent = 0

    def send(http: httpx.Client, n: int, pause: float = 0.0) -> None:
        nonlocal sent
        for _ in range(n):
            time.sleep(pause)
            rid = f"q{sent}"
            body = live_rows[(2 * sent) % len(live_rows):][:2]
            sent += 1
            if http.post("/v1/predict", json=body, headers={"x-request-id": rid}
                         ).status_code == 200:
                answered.append(rid)

    server = LiveServer(app)
    with server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert _ready(http, "ready") == {"status": "ready"}
        send(http, 30)
        postgres.stop()                       # pg_ctl stop -m fast: sessions are cut
        try:
            down = _ready(http, "degraded")
            assert down["database"] == "down"
            assert "cannot be reached" in str(down["detail"])
            send(http, 30, pause=0.1)         # answered while the database is down (3 s+)
            assert len(answered) == 60
            assert _ready(http, "degraded")["database"] == "down"  # still down, still said
        finally:
            postgres.start()
        _ready(http, "ready")
        send(http, 30)
        server.stop()                         # graceful: the log is flushed
    assert app.state.server.log.failed == 0
    engine = open_database(pg_url)
    with engine.connect() as conn:
        logged = conn.execute(select(predictions.c.request_id, func.count()).group_by(
            predictions.c.request_id)).all()
    assert len(answered) == 90
    assert dict(logged) == {rid: 2 for rid in answered}   # none lost, none twice
