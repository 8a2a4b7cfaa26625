"""``/docs`` works offline (issue 14 point 10): Swagger UI's assets come from the package,
not from a CDN, and the page draws the API's operations in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

from serve_helpers import LiveServer

from browser import _ARGS, _chromium
from mlwright.serve import create_app


def test_docs_render_offline_in_chromium(run_a: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    app = create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'log.db'}")
    left: list[str] = []  # requests that would leave loopback (aborted: the machine is offline)
    errors: list[str] = []
    with LiveServer(app) as server:
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=_chromium(), args=_ARGS)
                try:
                    page = browser.new_page()
                    page.on("pageerror", lambda exc: errors.append(str(exc)))

                    def route(r):  # type: ignore[no-untyped-def]
                        if r.request.url.startswith(server.url) or \
                                r.request.url.startswith(("data:", "blob:")):
                            r.continue_()
                        else:
                            left.append(r.request.url)
                            r.abort()

                    page.route("**/*", route)
                    page.goto(f"{server.url}/docs", wait_until="load", timeout=60_000)
                    page.wait_for_selector(".opblock", timeout=60_000)
                    defined = page.evaluate("typeof SwaggerUIBundle")
                    operations = page.locator(".opblock-summary-path").all_inner_texts()
                finally:
                    browser.close()
        finally:
            server.stop()
    assert left == [] and errors == []
    assert defined == "function"
    assert "/v1/predict" in " ".join(operations) and "/metrics" in " ".join(operations)


def test_docs_and_their_assets_need_no_key_and_redoc_is_off(run_a: Path, tmp_path: Path
                                                            ) -> None:
    from fastapi.testclient import TestClient

    from mlwright.serve.keys import create_key

    db = f"sqlite:///{tmp_path / 'log.db'}"
    create_key(db, "docs-test")
    app = create_app(str(run_a), database_url=db, require_api_key=True)
    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "cdn" not in page.text
        assert "/docs/static/swagger-ui-bundle.js" in page.text
        js = client.get("/docs/static/swagger-ui-bundle.js")
        assert js.status_code == 200 and "SwaggerUIBundle" in js.text
        assert js.headers["content-type"].startswith("text/javascript")
        assert client.get("/docs/static/swagger-ui.css").status_code == 200
        assert client.get("/docs/static/favicon-32x32.png").status_code == 200
        assert client.get("/docs/oauth2-redirect").status_code == 200
        assert client.get("/docs/static/LICENSE").status_code == 401  # no directory listing
        assert client.get("/redoc").status_code == 401  # not an open page any more
        assert client.get("/v1/model").status_code == 401
        assert "/docs" not in client.get("/openapi.json").json()["paths"]


def test_monitor_and_docs_have_their_own_metrics_labels(run_a: Path, tmp_path: Path) -> None:
    """Issue 14 point 13: ``/v1/monitor`` was counted as endpoint "other" in /metrics."""
    from fastapi.testclient import TestClient

    from mlwright.loop.service import SERVER_EXTENSIONS

    app = create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'log.db'}",
                     extensions=SERVER_EXTENSIONS)
    with TestClient(app) as client:
        assert client.get("/v1/monitor").status_code == 404  # nothing logged yet
        assert client.get("/docs/static/swagger-ui.css").status_code == 200
        metrics = client.get("/metrics").text
    assert 'mlwright_requests_total{endpoint="/v1/monitor",status="404"} 1.0' in metrics
    assert 'mlwright_requests_total{endpoint="/docs",status="200"} 1.0' in metrics
    assert 'endpoint="other"' not in metrics
