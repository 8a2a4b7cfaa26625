"""Per-key rate limits against a real server: under a bounded burst the share of 429s is the
one the configured rate implies, each 429 names the limit and says when to retry, other keys
are not slowed, and the limits and refusals show in /metrics."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.config import ServeConfig
from mlwright.exceptions import ServingError
from mlwright.serve import create_app
from mlwright.serve.keys import ApiKey, create_key
from mlwright.serve.middleware.rate_limit import RateLimits
from mlwright.serve.prometheus import ServerMetrics


@pytest.fixture(scope="module")
def limited(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'project.db'}"
    keys = {name: create_key(url, name, rate=rate)
            for name, rate in (("burst", "40/minute"), ("plain", None),
                               ("free", "unlimited"), ("short", "3 per 2 seconds"))}
    app = create_app(str(run_a), database_url=url, require_api_key=True,
                     config=ServeConfig(rate_limit="25/minute"))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client, keys


def _metric(text: str, name: str, key_id: str) -> float | None:
    found = re.search(rf'^{name}\{{key="{key_id}",name="[^"]*"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


def test_a_burst_gets_the_configured_share_of_429s(limited: Any,
                                                   telco_rows: pd.DataFrame) -> None:
    client, keys = limited
    (burst_id, burst), (free_id, free) = keys["burst"], keys["free"]
    rows = records(telco_rows.head(50))
    sent = 200

    def call(i: int) -> httpx.Response:
        return client.post("/v1/predict", json=rows[i % len(rows)], headers={"x-api-key": burst})

    def other(i: int) -> int:
        return client.post("/v1/predict", json=rows[i % len(rows)],
                           headers={"x-api-key": free}).status_code

    # 200 requests from 16 threads, well within one 60 s window, with an unlimited key's
    # requests mixed in.
    with ThreadPoolExecutor(16) as pool:
        unlimited = pool.map(other, range(40))
        answers = list(pool.map(call, range(sent)))
    assert list(unlimited) == [200] * 40
    codes = [a.status_code for a in answers]
    assert set(codes) == {200, 429}
    refused = [a for a in answers if a.status_code == 429]
    expected = (sent - 40) / sent                      # 40 of them per minute
    print(f"burst: {codes.count(200)} answered, {len(refused)} refused (429) of {sent}; "
          f"429 share {len(refused) / sent:.3f}, configured {expected:.3f}")
    assert abs(len(refused) / sent - expected) <= 0.05 * expected, codes.count(200)
    for answer in refused:
        wait = int(answer.headers["retry-after"])
        assert 1 <= wait <= 60
        body = answer.json()
        assert body["limit"] == "40 requests per minute" and body["retry_after"] == wait
        assert "'burst'" in body["detail"] and f"Retry after {wait} s" in body["detail"]
        assert "--rate" in body["detail"]
    metrics = client.get("/metrics", headers={"x-api-key": free}).text
    assert _metric(metrics, "mlwright_rate_limited_total", burst_id) == len(refused)
    assert _metric(metrics, "mlwright_rate_limit_requests", burst_id) == 40
    assert _metric(metrics, "mlwright_rate_limit_window_seconds", burst_id) == 60
    assert _metric(metrics, "mlwright_rate_limit_requests", keys["plain"][0]) == 25
    assert _metric(metrics, "mlwright_rate_limit_requests", free_id) is None  # unlimited
    assert f'mlwright_requests_total{{endpoint="/v1/predict",status="429"}} {len(refused)}' \
        in metrics


def test_the_default_limit_applies_to_a_key_without_its_own(limited: Any) -> None:
    client, keys = limited
    plain = keys["plain"][1]
    codes = [client.get("/v1/model", headers={"x-api-key": plain}).status_code
             for _ in range(30)]
    assert codes == [200] * 25 + [429] * 5
    last = client.get("/v1/model", headers={"x-api-key": plain}).json()
    assert last["limit"] == "25 requests per minute" and "serve.rate_limit" in last["detail"]
    assert client.get("/healthz").status_code == 200   # health checks are never limited


def test_retry_after_is_honest(limited: Any) -> None:
    client, keys = limited
    short = {"x-api-key": keys["short"][1]}
    codes = [client.get("/v1/model", headers=short).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    refused = client.get("/v1/model", headers=short)
    wait = int(refused.headers["retry-after"])
    assert refused.json()["limit"] == "3 requests per 2 seconds" and 1 <= wait <= 2
    time.sleep(wait + 0.05)
    assert client.get("/v1/model", headers=short).status_code == 200


def test_anonymous_callers_on_loopback(run_a: Path, tmp_path: Path) -> None:
    app = create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'log.db'}",
                     config=ServeConfig(anonymous_rate_limit="10/minute"))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        codes = [client.get("/v1/model").status_code for _ in range(15)]
        assert codes == [200] * 10 + [429] * 5
        body = client.get("/metrics").json()
        assert "127.0.0.1" in body["detail"] and "serve.anonymous_rate_limit" in body["detail"]
        assert [client.get("/readyz").status_code for _ in range(20)] == [200] * 20
    registry = app.state.server.metrics.registry
    anonymous = {"key": "anonymous", "name": "anonymous"}
    assert registry.get_sample_value("mlwright_rate_limit_requests", anonymous) == 10
    assert registry.get_sample_value("mlwright_rate_limited_total", anonymous) == 6


def test_both_strategies_count_exactly_and_bad_rates_are_refused(run_a: Path,
                                                                 tmp_path: Path) -> None:
    key = ApiKey("k1", "app", frozenset({"predict"}), "5/second")
    for strategy in ("fixed-window", "moving-window"):
        limits = RateLimits(ServeConfig(rate_limit_strategy=strategy), ServerMetrics())
        limits.update([key])
        item = limits.limit_of(key)
        assert item is not None
        started = time.time()
        waits = [limits.wait(item, "key:k1") for _ in range(8)]
        assert waits[:5] == [0] * 5 and waits[5:] == [1] * 3, strategy
        time.sleep(max(0.0, started + 1.25 - time.time()))   # the window has passed
        assert limits.wait(item, "key:k1") == 0, strategy
    with pytest.raises(ServingError, match=r"serve.rate_limit is '100/fortnight'"):
        create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'log.db'}",
                   config=ServeConfig(rate_limit="100/fortnight"))


def test_a_revoked_keys_limit_leaves_metrics() -> None:
    metrics = ServerMetrics()
    limits = RateLimits(ServeConfig(rate_limit="5/second"), metrics)
    kept, revoked = (ApiKey(i, i, frozenset({"read"}), None) for i in ("kept", "gone"))
    limits.update([kept, revoked])
    limits.update([kept])
    shown = {s.labels["key"] for m in metrics.registry.collect() if m.name ==
             "mlwright_rate_limit_requests" for s in m.samples}
    assert shown == {"kept"}
