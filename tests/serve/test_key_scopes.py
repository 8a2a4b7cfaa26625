"""API key scopes, route by route, against a real server with the monitor and loop routes
mounted: each key reaches exactly the routes of its scopes and gets 403 naming the scope
elsewhere; a key made before scopes existed (an old database, migrated) keeps every scope."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from serve_helpers import LiveServer, api_routes, records
from typer.testing import CliRunner

from mlwright.exceptions import ServingError
from mlwright.loop.service import SERVER_EXTENSIONS
from mlwright.serve import create_app
from mlwright.serve.keys import SCOPES, create_key, hash_key, list_keys
from mlwright.serve.middleware.api_keys import OPEN_PATHS, required_scope
from mlwright.store import SCHEMA_VERSION

# Every route the server and its extensions mount, with the scope it needs and the answer
# a key with that scope gets. A route added without a line here fails the first test.
ROUTE_SCOPES = {
    ("POST", "/v1/predict"): ("predict", 200),
    ("POST", "/v1/predict/batch"): ("predict", 200),
    ("POST", "/v1/explain"): ("predict", 200),
    ("POST", "/v1/feedback"): ("feedback", 200),
    ("GET", "/v1/model"): ("read", 200),
    ("GET", "/v1/monitor"): ("read", 200),
    ("GET", "/metrics"): ("read", 200),
    ("POST", "/v1/hooks/retrain"): ("admin", 202),
}
LEGACY_KEY = "mlw_a-key-made-before-scopes-existed"


def _old_database(path: Path) -> str:
    """A project database as mlwright wrote it before scopes (schema version 1), holding
    one key."""
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL,
                                         ts FLOAT NOT NULL);
            INSERT INTO schema_version VALUES (1, 1, 0);
            CREATE TABLE api_keys (id VARCHAR(16) PRIMARY KEY, name VARCHAR(200) NOT NULL,
                                   hash VARCHAR(64) NOT NULL UNIQUE, created FLOAT NOT NULL,
                                   revoked FLOAT);""")
        conn.execute("INSERT INTO api_keys VALUES ('0ld0ld00', 'legacy', ?, ?, NULL)",
                     (hash_key(LEGACY_KEY), time.time()))
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def scoped(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = _old_database(tmp_path_factory.mktemp("keys") / "project.db")
    keys = {"legacy": LEGACY_KEY}
    for scope in SCOPES:
        keys[scope] = create_key(url, f"only-{scope}", scopes=[scope])[1]
    keys["predict+feedback"] = create_key(url, "app", scopes=["predict", "feedback"])[1]
    keys["no scopes given"] = create_key(url, "everything")[1]
    app = create_app(str(run_a), database_url=url, require_api_key=True,
                     extensions=SERVER_EXTENSIONS)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield app, client, keys, url


def _call(client: httpx.Client, method: str, path: str, key: str,
          row: dict[str, Any], table: pd.DataFrame) -> httpx.Response:
    headers = {"x-api-key": key}
    if path == "/v1/predict/batch":
        return client.post(path, content=table.to_csv(index=False).encode(),
                           headers={**headers, "content-type": "text/csv"})
    if path == "/v1/feedback":
        return client.post(path, json={"key": "customer-1", "label": "No"}, headers=headers)
    if method == "POST":
        body = {"reason": "scope test"} if path == "/v1/hooks/retrain" else row
        return client.post(path, json=body, headers=headers)
    return client.get(path, headers=headers)


def test_every_route_needs_a_scope(scoped: Any) -> None:
    app = scoped[0]
    mounted = {r for r in api_routes(app) if r[1] not in OPEN_PATHS}
    assert mounted == set(ROUTE_SCOPES)
    for (method, path), (scope, _) in ROUTE_SCOPES.items():
        assert required_scope(method, path) == scope, (method, path)
    # A route nobody listed: reading it needs read, anything else admin.
    assert required_scope("GET", "/v1/new") == "read"
    assert required_scope("POST", "/v1/reload") == "admin"
    assert required_scope("DELETE", "/v1/model") == "admin"


def test_each_key_reaches_exactly_its_scopes(scoped: Any, telco_rows: pd.DataFrame) -> None:
    _, client, keys, _ = scoped
    row = records(telco_rows.head(1))[0]
    table = telco_rows.head(3)
    granted = {"legacy": set(SCOPES), "no scopes given": set(SCOPES),
               "predict+feedback": {"predict", "feedback"}, "admin": set(SCOPES),
               **{s: {s} for s in SCOPES if s != "admin"}}
    for (method, path), (scope, ok) in ROUTE_SCOPES.items():
        for who, key in keys.items():
            answer = _call(client, method, path, key, row, table)
            if scope in granted[who]:
                assert answer.status_code == ok, (who, method, path, answer.text[:300])
            else:
                assert answer.status_code == 403, (who, method, path, answer.text[:300])
                body = answer.json()
                assert body["scope"] == scope
                assert f"lacks the scope {scope!r} that {method} {path} needs" in body["detail"]
                assert f"mlwright keys create NAME --scope {scope}" in body["detail"]
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path      # open, no key
    assert client.post("/v1/predict", json=row).status_code == 401
    metrics = client.get("/metrics", headers={"x-api-key": keys["read"]}).text
    assert 'mlwright_errors_total{endpoint="/v1/predict",kind="forbidden"}' in metrics


def test_the_old_key_was_migrated_as_every_scope(scoped: Any) -> None:
    url = scoped[3]
    legacy = next(k for k in list_keys(url) if k["name"] == "legacy")
    assert legacy["scopes"] == list(SCOPES) and legacy["rate"] is None
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("select version from schema_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("select scopes, rate from api_keys where id = '0ld0ld00'"
                            ).fetchone() == (None, None)


def test_the_retrain_webhook_needs_admin_without_required_keys(
        run_a: Path, tmp_path: Path) -> None:
    """On loopback no key is required, but the webhook still checks its own: admin."""
    url = f"sqlite:///{tmp_path / 'project.db'}"
    _, predict = create_key(url, "predictor", scopes=["predict"])
    _, admin = create_key(url, "ops", scopes=["admin"])
    app = create_app(str(run_a), database_url=url, extensions=SERVER_EXTENSIONS)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        refused = client.post("/v1/hooks/retrain", headers={"x-api-key": predict})
        assert refused.status_code == 403 and "--scope admin" in refused.json()["detail"]
        assert client.post("/v1/hooks/retrain", headers={"x-api-key": admin}).status_code == 202
        assert client.get("/v1/model").status_code == 200   # everything else stays open


def test_keys_cli_creates_and_lists_scopes_and_rates(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from mlwright.cli._common import console
    from mlwright.cli.app import app

    monkeypatch.setattr(console, "width", 100)  # whatever COLUMNS the machine has

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "app", "--scope", "predict", "--scope",
                               "feedback", "--rate", "100/second", "--database", db])
    assert made.exit_code == 0, made.output
    # Rich may still wrap a cell: the words are compared with the line breaks taken out.
    said = " ".join(made.output.split())
    assert "predict feedback" in said and "100/second" in said
    runner.invoke(app, ["keys", "create", "plain", "--database", db])
    listed = runner.invoke(app, ["keys", "list", "--database", db])
    assert listed.exit_code == 0
    rows = [x for x in listed.output.splitlines() if "│" in x]
    app_row = next(i for i, x in enumerate(rows) if " app " in x)
    plain_row = next(i for i, x in enumerate(rows) if " plain " in x)
    cells = " ".join(rows[app_row:plain_row])  # the app key's row, wrapped or not
    assert "predict" in cells and "feedback" in cells and "100/second" in cells
    cells = " ".join(rows[plain_row:])
    assert all(s in cells for s in ("predict", "feedback", "read", "admin", "default"))
    assert "100/second" not in cells
    stored = {k["name"]: k for k in list_keys(db)}
    assert stored["app"]["scopes"] == ["predict", "feedback"] and stored["app"]["rate"] == \
        "100/second"
    assert stored["plain"]["rate"] is None
    bad = runner.invoke(app, ["keys", "create", "x", "--scope", "write", "--database", db])
    assert bad.exit_code != 0
    with pytest.raises(ServingError, match=r"'write'.*predict, feedback, read, admin"):
        create_key(db, "x", scopes=["write"])
    with pytest.raises(ServingError, match=r"'10/fortnight', not a rate limit.*100/second"):
        create_key(db, "x", rate="10/fortnight")
    assert [k["name"] for k in list_keys(db)] == ["app", "plain"]


def test_keys_cli_takes_the_store_the_server_takes(tmp_path: Path) -> None:
    # `serve --store X` reads its keys from X's database: `keys create/list/revoke --store X`
    # write and read the same one, whatever the working folder's mlwright.toml says.
    from mlwright.cli.app import app
    from mlwright.config import StoreConfig

    store = tmp_path / "elsewhere"
    db = StoreConfig.model_validate({}).with_option(str(store)).database_url()
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "dashboard", "--store", str(store)])
    assert made.exit_code == 0, made.output
    assert [k["name"] for k in list_keys(db)] == ["dashboard"]
    listed = runner.invoke(app, ["keys", "list", "--store", str(store)])
    assert listed.exit_code == 0 and "dashboard" in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", "dashboard", "--store", str(store)])
    assert revoked.exit_code == 0 and "Revoked 1 key" in revoked.output
    assert list_keys(db)[0]["revoked"] is not None
