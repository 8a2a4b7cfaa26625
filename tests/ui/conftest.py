"""A replayed story for the dashboard, on real telco_churn slices: a champion trained and
registered (with its report), served by a real uvicorn server with the dashboard mounted,
live traffic through HTTP with drift injected halfway and some records refused (422),
feedback labels for every answer, and one retrain by the loop (a worker process)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_helpers import TARGET, Story, Watched, send

from telco_drift import shifted  # tests/telco_drift.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from serve_helpers import LiveServer


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    import mlwright as mw
    from mlwright.cli.serve import UI_EXTENSION
    from mlwright.config import DataConfig, LoopConfig, ProjectConfig, StoreConfig
    from mlwright.datasets import load_suite
    from mlwright.evaluate.report import evaluate
    from mlwright.loop import run_once
    from mlwright.loop.service import SERVER_EXTENSIONS
    from mlwright.monitor import run_monitor
    from mlwright.registry.core import Registry
    from mlwright.serve import create_app

    root = tmp_path_factory.mktemp("ui-story")
    df = load_suite("telco_churn", nrows=2400, seed=1)
    source, live = df.iloc[:1400].reset_index(drop=True), df.iloc[1400:].reset_index(drop=True)
    (root / "data").mkdir()
    source.to_csv(root / "data" / "churn.csv", index=False)
    config = ProjectConfig(
        name="churn", data=DataConfig(source=str(root / "data" / "churn.csv"), target=TARGET),
        store=StoreConfig(root=root / ".mlwright"),
        loop=LoopConfig(triggers=["webhook"], min_feedback=100, bootstrap=200,
                        rollback_window=100))
    database_url = config.store.database_url()
    tracking_uri = config.store.resolved_tracking_uri()
    registry = Registry(tracking_uri, database_url=database_url)
    champion = mw.train(source, TARGET, time_budget=8, families=["lightgbm", "linear"],
                        seed=0)
    folder = champion.save(root / "champion-run")
    evaluate(champion, explain=False, bootstrap=200).write(folder)
    registry.register(champion, folder, name="churn", alias="champion")
    app = create_app("churn@champion", database_url=database_url, tracking_uri=tracking_uri,
                     poll_interval=0.5, extensions=(*SERVER_EXTENSIONS, UI_EXTENSION),
                     project=config)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        half = len(live) // 2
        sent = send(client, live.iloc[:half], batch=10, pause=0.06, bad_every=10)
        sent += send(client, shifted(live.iloc[half:]), batch=10, pause=0.06, bad_every=4)
        labels = [{"request_id": rid, "row": i, "label": label}
                  for rid, part in sent for i, label in enumerate(part[TARGET])]
        answer = client.post("/v1/feedback", json=labels)
        assert answer.status_code == 200, answer.text
        time.sleep(1.0)  # the log writer's batch reaches the database
        # The monitor over the drifted half records its alerts (the models' badges).
        alerts = run_monitor(database_url, "churn", reference=folder, window="400",
                             config=config.monitor).alerts
        assert alerts, "the drifted half raised no alert"
        before = [v.version for v in registry.list("churn")]
        result = run_once(config, force="drift in the second half of the traffic",
                          time_budget=8, families=["linear"], n_trials=1)
        assert result.retrain is not None and result.retrain.ok, result.retrain
        yield Story(server.url, config, database_url, tracking_uri, server, before,
                    result.action)



@pytest.fixture
def browser(story: Story) -> Iterator[Any]:
    """``open()`` gives a fresh :class:`Watched` page (own cookies) in Debian's chromium."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from browser import _ARGS, _chromium

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=_chromium(), args=_ARGS)

        def open_page() -> Watched:
            context = chromium.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            watched = Watched(page, [], [], [])
            page.on("console", lambda m: watched.errors.append(m.text)
                    if m.type == "error" else None)
            page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))

            def route(r: Any) -> None:
                url = r.request.url
                watched.requests.append(url)
                if url.startswith(story.url) or url.startswith(("data:", "blob:")):
                    r.continue_()
                else:
                    watched.left.append(url)
                    r.abort()

            page.route("**/*", route)
            return watched

        try:
            yield open_page
        finally:
            chromium.close()
