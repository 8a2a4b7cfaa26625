"""The dashboard in a real headless Chromium over the replayed story (conftest.py): every
panel shows data, no console error, no request leaves loopback; promote, rollback and pause
from the page move the alias (the server follows) and are audited; without an admin key the
actions are refused with 403; off loopback every page needs a key."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from ui_helpers import ARTIFACTS, Story

from mlwright.registry.audit import AuditLog
from mlwright.serve.keys import create_key

pytestmark = pytest.mark.slow

PANELS = ("models", "traffic", "drift", "performance", "decisions", "audit")


def _loaded(watched: Any, url: str) -> Any:
    page = watched.page
    page.goto(url, wait_until="load", timeout=60_000)
    page.wait_for_function(
        """(panels) => panels.every(p => {
             const el = document.getElementById("panel-" + p);
             return el && el.dataset.mwState === "done"; })""", arg=list(PANELS),
        timeout=90_000)
    return page


def _points(page: Any, panel: str, fig: str, trace: int = 0) -> list[Any]:
    """The y values of a drawn chart's trace (Plotly keeps them on the element)."""
    return list(page.evaluate(
        """([panel, fig, trace]) => {
             const el = document.querySelector(`#panel-${panel} [data-fig="${fig}"]`);
             return el && el.data && el.data[trace] ? Array.from(el.data[trace].y) : null; }""",
        [panel, fig, trace]) or [])


def _layout(page: Any, panel: str, fig: str) -> dict[str, Any]:
    return dict(page.evaluate(
        """([panel, fig]) => { const el = document.querySelector(
             `#panel-${panel} [data-fig="${fig}"]`);
             return {shapes: (el.layout.shapes || []).length,
                     names: el.data.map(t => t.name)}; }""", [panel, fig]))


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_every_panel_shows_the_story_offline(story: Story, browser: Any) -> None:
    watched = browser()
    page = _loaded(watched, f"{story.url}/ui/m/churn?range=all")
    _shot(page, "dashboard.png")
    # Traffic: requests/s and latency in the windows with traffic; 422s counted; rows per
    # version.
    rps = [v for v in _points(page, "traffic", "rps") if v is not None]
    assert len(rps) >= 5 and min(rps) > 0
    p99 = [v for v in _points(page, "traffic", "latency", 1) if v is not None]
    assert len(p99) >= 5 and min(p99) > 0
    rejected = [v for v in _points(page, "traffic", "errors", 1) if v is not None]
    assert max(rejected) > 0
    assert "champion 1" in _layout(page, "traffic", "versions")["names"]
    # Drift: the second half drifts (monthly_charges x 1.3, contract swapped), the first
    # half much less; the violations name the refused column.
    share = [v for v in _points(page, "drift", "share") if v is not None]
    half = len(share) // 2
    assert max(share[half:]) > max(share[:half]) and max(share[half:]) > 0
    assert "tenure" in _layout(page, "drift", "violations")["names"]
    assert page.locator("#panel-drift select[name=feature] option").count() >= 10
    # Live performance against the offline CV interval.
    live = [v for v in _points(page, "performance", "performance", 2) if v is not None]
    assert len(live) >= 5 and all(0 < v <= 1 for v in live)
    perf_names = _layout(page, "performance", "performance")["names"]
    assert "offline CV 95% interval" in perf_names and "live roc_auc" in perf_names
    # Decisions: the retrain and its refusal as annotations on the charts and in the table.
    decisions = page.locator("#decisions").inner_text()
    assert "retrain_started" in decisions and "refuse" in decisions
    timeline = _layout(page, "decisions", "timeline")
    assert timeline["shapes"] >= 2
    assert {"retrain started", "refuse", "register"} <= set(timeline["names"])
    assert _layout(page, "traffic", "rps")["shapes"] >= 2
    # Models: both versions, aliases, an interval, report and model card links that work.
    assert page.locator("#panel-models [data-alerts]").count() >= 1  # the alert badge
    versions = page.locator("#versions").inner_text()
    assert "champion" in versions and "challenger" in versions and "[" in versions
    report = httpx.get(f"{story.url}/ui/m/churn/v/1/report")
    assert report.status_code == 200 and "<html" in report.text[:500].lower()
    assert httpx.get(f"{story.url}/ui/m/churn/v/1/model_card").status_code == 200
    # Audit log: paginated by the server (at most 100 rows a request).
    assert page.locator("#audit tbody tr").count() >= 4
    two = httpx.get(f"{story.url}/ui/m/churn/panel/audit", params={"per_page": 2})
    assert two.text.count("<tr>") == 3 and "page 1 of" in two.text and "older" in two.text
    assert httpx.get(f"{story.url}/ui/m/churn/panel/audit",
                     params={"per_page": 101}).status_code == 422
    # The time-range selector redraws one panel.
    page.select_option("#panel-traffic select[name=range]", "5m")
    page.wait_for_function("""() => document.querySelector(
        '#panel-traffic select[name=range]').value === '5m' &&
        document.getElementById('panel-traffic').dataset.mwState === 'done'""",
                           timeout=60_000)
    assert len([v for v in _points(page, "traffic", "rps") if v is not None]) >= 5
    _shot(page, "dashboard-5m.png")
    assert watched.errors == []
    assert watched.left == [] and watched.requests
    assert all(u.startswith(story.url) for u in watched.requests)


def _champion(story: Story) -> str:
    return str(httpx.get(f"{story.url}/v1/model").json()["champion"]["version"])


def _wait_for_champion(story: Story, version: str) -> None:
    deadline = time.monotonic() + 20
    while _champion(story) != version:
        assert time.monotonic() < deadline, f"the server still answers with {_champion(story)}"
        time.sleep(0.2)


def _sign_in(watched: Any, story: Story, key: str) -> Any:
    page = watched.page
    page.goto(f"{story.url}/ui/login", wait_until="load")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{story.url}/ui/m/churn*")
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations
    return _loaded(watched, page.url)


def test_promote_rollback_and_pause_from_the_ui(story: Story, browser: Any) -> None:
    from mlwright.loop import run_once
    from mlwright.loop.pause import loop_paused

    _, key = create_key(story.database_url, "ui-admin", scopes=["admin"])
    audit = AuditLog(story.database_url)
    watched = browser()
    page = _sign_in(watched, story, key)
    assert _champion(story) == "1"
    page.select_option("#promote-version", "2")
    page.click("#promote")
    page.wait_for_selector("#action-result .mw-ok")
    assert "churn@champion -> 2" in page.inner_text("#action-result")
    assert page.inner_text("#champion") == "2"  # the page's own line follows
    _wait_for_champion(story, "2")  # the server followed the alias
    last = audit.entries("churn")[-1]
    assert (last["action"], last["version"], last["from_version"], last["actor"]) == (
        "promote", "2", "1", "ui:ui-admin")
    page.wait_for_function("""() => document.getElementById('panel-models')
        .dataset.mwState === 'done'""")
    _shot(page, "promoted.png")
    page.click("#rollback")
    page.wait_for_function("""() => document.querySelector('#action-result')
        .innerText.includes('rolled back')""")
    _wait_for_champion(story, "1")
    assert page.inner_text("#champion") == "1"
    last = audit.entries("churn")[-1]
    assert (last["action"], last["version"], last["actor"]) == ("rollback", "1", "ui:ui-admin")
    page.click("#pause")
    page.wait_for_function("""() => document.querySelector('#action-result')
        .innerText.includes('paused')""")
    assert loop_paused(story.database_url, "churn")["actor"] == "ui:ui-admin"
    assert page.inner_text("#loop-state") == "paused"
    assert run_once(story.config).action == "paused"
    assert audit.entries("churn")[-1]["action"] == "loop_paused"
    page.reload(wait_until="load")
    page.click("#pause")  # now "Resume the loop"
    page.wait_for_function("""() => document.querySelector('#action-result')
        .innerText.includes('runs again')""")
    assert loop_paused(story.database_url, "churn") is None
    assert watched.errors == [] and watched.left == []


def test_actions_need_an_admin_key(story: Story, browser: Any) -> None:
    _, reader = create_key(story.database_url, "ui-reader", scopes=["read"])
    _, admin = create_key(story.database_url, "ui-admin-2", scopes=["admin"])
    audit = AuditLog(story.database_url)
    before = len(audit.entries("churn"))
    watched = browser()
    page = _sign_in(watched, story, reader)
    page.select_option("#promote-version", "2")
    page.click("#promote")
    page.wait_for_selector("#action-result [data-status]")
    assert page.get_attribute("#action-result [data-status]", "data-status") == "403"
    assert "admin" in page.inner_text("#action-result")
    _shot(page, "refused.png")
    url = f"{story.url}/ui/m/churn/promote"
    assert httpx.post(url, data={"version": "2"}).status_code == 403  # no key at all
    # The admin key in the cookie alone, without the dashboard's header: a cross-site form.
    assert httpx.post(url, data={"version": "2"},
                      cookies={"mlwright_key": admin}).status_code == 403
    assert len(audit.entries("churn")) == before and _champion(story) == "1"
    # The browser logged the refused request as a console error (a 403 is one); nothing
    # else, and nothing left loopback.
    assert all("403" in e for e in watched.errors) and watched.left == []


def test_off_loopback_every_page_needs_a_key(story: Story) -> None:
    from fastapi.testclient import TestClient

    from mlwright.cli.serve import UI_EXTENSION
    from mlwright.serve import create_app
    from mlwright.ui import create_ui_app

    _, reader = create_key(story.database_url, "ui-reader-2", scopes=["read"])
    served = create_app("churn@champion", database_url=story.database_url,
                        tracking_uri=story.tracking_uri, host="0.0.0.0",
                        extensions=(UI_EXTENSION,))
    alone = create_ui_app(story.database_url, story.tracking_uri, host="0.0.0.0")
    for app in (served, alone):
        with TestClient(app) as client:
            assert client.get("/ui/m/churn").status_code == 401
            assert client.get("/ui/m/churn/panel/audit").status_code == 401
            assert client.get("/ui/login").status_code == 200
            assert client.get("/ui/static/htmx.min.js").status_code == 200
            assert client.get("/ui/m/churn", headers={"X-API-Key": reader}).status_code == 200
            client.cookies.set("mlwright_key", reader)
            assert client.get("/ui/m/churn/panel/audit").status_code == 200
            refused = client.post("/ui/m/churn/promote", data={"version": "2"},
                                  headers={"HX-Request": "true"})
            assert refused.status_code == 403 and "admin" in refused.text
            client.cookies.clear()
            signed = client.post("/ui/login", data={"key": reader}, follow_redirects=False)
            assert signed.status_code == 303 and "httponly" in \
                signed.headers["set-cookie"].lower()
            assert client.post("/ui/login", data={"key": "mlw_wrong"}).status_code == 401


def test_the_ui_command_serves_the_project_of_its_folder(story: Story) -> None:
    """``mlwright ui NAME`` in the project's folder (its .mlwright store) serves the same
    pages, on loopback without a key."""
    import os
    import signal
    import subprocess
    import sys

    from serve_helpers import free_port

    port = free_port()
    root = story.config.store.root.parent
    process = subprocess.Popen(
        [sys.executable, "-c", "from mlwright.cli import main; main()", "ui", "churn",
         "--port", str(port)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                home = httpx.get(f"{url}/ui", follow_redirects=False, timeout=60)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, \
                    process.stdout.read() if process.stdout else b""
                time.sleep(0.2)
        assert home.status_code == 303 and home.headers["location"] == "/ui/m/churn"
        page = httpx.get(f"{url}/ui/m/churn", timeout=60)  # the registry's first read
        assert page.status_code == 200 and "panel-traffic" in page.text
        audit = httpx.get(f"{url}/ui/m/churn/panel/audit", timeout=60)
        assert "retrain_started" in audit.text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
