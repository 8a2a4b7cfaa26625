"""A/B split, stickiness and shadow mode on a live server with two real models."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from serve_helpers import LiveServer, records

from mlwright.config import ServeConfig
from mlwright.serve import create_app


async def _send(url: str, payloads: list[tuple[dict[str, Any], dict[str, str]]],
                concurrency: int = 8) -> list[httpx.Response]:
    results: list[httpx.Response | None] = [None] * len(payloads)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(payloads)):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body, headers = payloads[i]
                results[i] = await client.post("/v1/predict", json=body, headers=headers)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [r for r in results if r is not None]


def test_ab_split_holds_the_share_and_is_sticky(run_a: Path, run_b: Path, tmp_path: Path,
                                                telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(200))
    db = tmp_path / "log.db"
    app = create_app(str(run_a), challenger=str(run_b), database_url=f"sqlite:///{db}",
                     config=ServeConfig(challenger_share=0.3))
    payloads = [(rows[i % 200], {"x-mlwright-key": f"customer-{i}"}) for i in range(2000)]
    with LiveServer(app) as server:
        responses = asyncio.run(_send(server.url, payloads))
        again = asyncio.run(_send(server.url, payloads[:200]))
    assert len(responses) == 2000 and all(r.status_code == 200 for r in responses)
    roles = [r.json()["role"] for r in responses]
    share = roles.count("challenger") / len(roles)
    assert abs(share - 0.3) <= 0.03, share
    # The same key lands on the same arm every time.
    assert [r.json()["role"] for r in again] == roles[:200]
    versions = {r.json()["role"]: r.json()["version"] for r in responses}
    assert versions["champion"] != versions["challenger"]
    with sqlite3.connect(db) as conn:
        logged = dict(conn.execute("select role, count(*) from predictions group by role"))
    assert logged == {"champion": roles.count("champion") + [r.json()["role"] for r in again
                                                             ].count("champion"),
                      "challenger": roles.count("challenger") + [
                          r.json()["role"] for r in again].count("challenger")}


def test_shadow_predictions_are_logged_for_every_request(
        run_a: Path, run_b: Path, tmp_path: Path, telco_rows: pd.DataFrame) -> None:
    rows = records(telco_rows.head(100))
    db = tmp_path / "log.db"
    app = create_app(str(run_a), challenger=str(run_b), database_url=f"sqlite:///{db}",
                     config=ServeConfig(shadow=True))
    # Single records and 3-record requests, concurrently.
    payloads = [(rows[i], {}) for i in range(100)] + [
        ({"records": rows[i:i + 3]}, {}) for i in range(0, 90, 3)]
    with LiveServer(app) as server:
        responses = asyncio.run(_send(server.url, payloads))
    assert all(r.status_code == 200 and r.json()["role"] == "champion" for r in responses)
    answered = {r.json()["request_id"] for r in responses}
    with sqlite3.connect(db) as conn:
        shadow = conn.execute("select request_id, row, prediction, version from predictions "
                              "where role = 'shadow'").fetchall()
        champion = conn.execute("select request_id, row from predictions "
                                "where role = 'champion'").fetchall()
    assert {(r, i) for r, i, _, _ in shadow} == set(champion)
    assert {r for r, _, _, _ in shadow} == answered
    assert len(shadow) == 100 + 90
    assert all(p is not None for _, _, p, _ in shadow)
    assert len({v for _, _, _, v in shadow}) == 1
