"""Three `mlwright serve` replicas on loopback, one PostgreSQL prediction log: under a
bounded load no answered request is lost or logged twice, every replica follows the
champion alias when it moves, and the monitor reads the shared log exactly as it reads the
same records from SQLite."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from mlwright.store import feedback, mlflow_uri, open_database, predictions

CLIENTS = 3
PER_PHASE = 30   # requests per client and phase (two phases: 180 requests, 360 records)


def _copy_log(source: str, target: str) -> None:
    """The shared log's records (ids included) into another database."""
    src, dst = open_database(source), open_database(target)
    with src.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(predictions))]
        labels = [dict(r._mapping) for r in conn.execute(select(feedback))]
    with dst.begin() as conn:
        conn.execute(predictions.insert(), rows)
        conn.execute(feedback.insert(), labels)


@pytest.mark.slow
def test_three_replicas_share_one_log_and_follow_the_champion(
        pg_url: str, telco_trained: tuple[Any, Path], telco_pg: pd.DataFrame,
        live_rows: list[dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from serve_helpers import serve_process

    from mlwright.monitor import run_monitor
    from mlwright.registry import Registry

    result, run = telco_trained
    monkeypatch.chdir(tmp_path)  # the registry's artifact folder (store.artifacts' default) is here
    reg = Registry(mlflow_uri(pg_url))
    reg.register(result, run, name="telco")
    reg.register(result, run, name="telco")           # 2: the challenger, promoted below
    labels = telco_pg.iloc[600:]["churn"].tolist()
    answered: dict[str, tuple[str, int]] = {}        # request id -> (version, first record)
    lock = threading.Lock()

    def client(k: int, urls: list[str], phase: int) -> None:
        with httpx.Client(timeout=60) as http:
            for i in range(PER_PHASE):
                n = (phase * CLIENTS + k) * PER_PHASE + i
                rid = f"p{phase}-c{k}-{i}"
                first = (2 * n) % len(live_rows)
                answer = http.post(f"{urls[n % len(urls)]}/v1/predict",
                                   json=live_rows[first:first + 2],
                                   headers={"x-request-id": rid})
                if answer.status_code == 200:
                    with lock:
                        answered[rid] = (answer.json()["version"], first)

    def load(urls: list[str], phase: int) -> None:
        threads = [threading.Thread(target=client, args=(k, urls, phase))
                   for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    with contextlib.ExitStack() as stack:
        replicas = [stack.enter_context(serve_process(
            ["telco@champion", "--store", pg_url], cwd=tmp_path)) for _ in range(3)]
        urls = [url for _, url in replicas]
        load(urls, 0)
        reg.promote("telco", "2", reason="alias move under load")
        deadline = time.monotonic() + 60
        for url in urls:   # every replica follows the alias (each polls the registry)
            while httpx.get(f"{url}/v1/model").json()["champion"]["version"] != "2":
                assert time.monotonic() < deadline, f"{url} still serves version 1"
                time.sleep(0.2)
        load(urls, 1)
        # Each replica writes its log in batches a few tens of ms after answering: labels for
        # a prediction not yet written are stored as unmatched (see /v1/feedback), so they
        # are sent once the shared log holds every answered request.
        engine = open_database(pg_url)
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as conn:
                n = conn.execute(select(func.count(predictions.c.request_id.distinct()))).scalar()
            if n == len(answered):
                break
            assert time.monotonic() < deadline, f"{n} of {len(answered)} requests logged"
            time.sleep(0.05)
        with httpx.Client(timeout=60) as http:  # labels back, through any replica
            items = [{"request_id": rid, "row": 0, "label": labels[first]}
                     for rid, (_, first) in sorted(answered.items())[::2]]
            sent = http.post(f"{urls[1]}/v1/feedback", json=items)
            assert sent.status_code == 200, sent.text
            assert sent.json()["matched"] == len(items)
        for process, _ in replicas:  # SIGTERM: drain and flush the log
            process.send_signal(signal.SIGTERM)
        for process, _ in replicas:  # uvicorn re-raises the signal once it has shut down
            assert process.wait(60) in (0, -signal.SIGTERM)
    assert len(answered) == 2 * CLIENTS * PER_PHASE
    assert {v for rid, (v, _) in answered.items() if rid.startswith("p1-")} == {"2"}
    engine = open_database(pg_url)
    with engine.connect() as conn:
        logged = dict(conn.execute(select(predictions.c.request_id, func.count()).group_by(
            predictions.c.request_id)).all())
        versions = dict(conn.execute(select(predictions.c.request_id, predictions.c.version)
                                     .where(predictions.c.row == 0)).all())
    assert logged == {rid: 2 for rid in answered}     # none lost, none twice
    assert versions == {rid: v for rid, (v, _) in answered.items()}
    # The monitor on the shared log equals the monitor on the same records in SQLite.
    lite = f"sqlite:///{(tmp_path / 'copy.db').as_posix()}"
    _copy_log(pg_url, lite)
    reports = [run_monitor(url, "telco", reference=run, window="5000", alerts=False)
               .to_dict() for url in (pg_url, lite)]
    for report in reports:
        report.pop("generated")
    assert reports[0]["n_records"] == 4 * CLIENTS * PER_PHASE
    assert reports[0]["performance"] is not None
    assert reports[0] == reports[1]
