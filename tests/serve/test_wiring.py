"""How the server is put together: every route mounted once, the middleware in their order,
each middleware doing its one job (and being counted), and ``create_app`` only wiring."""

from __future__ import annotations

import inspect
from pathlib import Path

import httpx
import pytest
from fastapi.middleware.cors import CORSMiddleware
from serve_helpers import LiveServer, api_routes

from mlwright.config import ServeConfig
from mlwright.loop.service import SERVER_EXTENSIONS
from mlwright.serve import create_app
from mlwright.serve.keys import create_key
from mlwright.serve.middleware import (
    MIDDLEWARE,
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    DeadlineMiddleware,
    ErrorsMiddleware,
    MetricsMiddleware,
    RateLimitMiddleware,
)
from mlwright.serve.state import ServerState

ROUTES = {("POST", "/v1/predict"), ("POST", "/v1/predict/batch"), ("POST", "/v1/explain"),
          ("POST", "/v1/feedback"), ("GET", "/v1/model"), ("GET", "/healthz"),
          ("GET", "/readyz"), ("GET", "/metrics")}
EXTENSION_ROUTES = {("GET", "/v1/monitor"), ("POST", "/v1/hooks/retrain")}


def test_every_route_is_mounted_once(run_a: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    plain = api_routes(create_app(str(run_a), database_url=db))
    assert sorted(plain) == sorted(ROUTES)
    app = create_app(str(run_a), database_url=db, extensions=SERVER_EXTENSIONS)
    assert isinstance(app.state.server, ServerState)
    extended = api_routes(app)
    assert len(extended) == len(set(extended)) and set(extended) == ROUTES | EXTENSION_ROUTES
    assert list(app.openapi()["paths"]) == [  # the mounting order, extensions last
        "/v1/predict", "/v1/predict/batch", "/v1/explain", "/v1/feedback", "/v1/model",
        "/healthz", "/readyz", "/metrics", "/v1/monitor", "/v1/hooks/retrain"]


def test_middleware_order(run_a: Path, tmp_path: Path) -> None:
    assert (MetricsMiddleware, ErrorsMiddleware, DeadlineMiddleware, ApiKeyMiddleware,
            RateLimitMiddleware,
            BodyLimitMiddleware) == MIDDLEWARE
    db = f"sqlite:///{tmp_path / 'log.db'}"
    app = create_app(str(run_a), database_url=db)
    assert [m.cls for m in app.user_middleware] == list(MIDDLEWARE)  # outermost first
    cors = create_app(str(run_a), database_url=db,
                      config=ServeConfig(cors_origins=["https://example.org"]))
    assert [m.cls for m in cors.user_middleware] == [*MIDDLEWARE, CORSMiddleware]
    assert all(m.kwargs["state"] is app.state.server for m in app.user_middleware)


def test_create_app_is_wiring_only() -> None:
    lines, _ = inspect.getsourcelines(create_app)
    assert len(lines) < 80
    body = "".join(lines).split('"""')[-1]  # after the docstring
    assert "def " not in body and "@app" not in body  # no route closures


def test_each_middleware_answers_and_is_counted(run_a: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    _, key = create_key(db, "wiring")
    app = create_app(str(run_a), database_url=db, require_api_key=True,
                     config=ServeConfig(max_body_mb=0.001))

    async def boom() -> None:
        raise RuntimeError("a secret detail of the server")

    app.add_api_route("/boom", boom)
    auth = {"authorization": f"Bearer {key}"}
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200  # open without a key
        refused = client.get("/v1/model")
        assert refused.status_code == 401 and "API key" in refused.json()["detail"]
        assert client.get("/v1/model", headers={"x-api-key": key}).status_code == 200
        big = client.post("/v1/predict", content=b"x" * 2000, headers=auth)
        assert big.status_code == 413 and "limit is 1,048" in big.json()["detail"]
        failed = client.get("/boom", headers=auth)
        assert failed.status_code == 500
        assert failed.json() == {"detail": "Internal error; see the server log."}
        assert "secret" not in failed.text and "Traceback" not in failed.text
        metrics = client.get("/metrics", headers=auth).text
    for line in ('mlwright_errors_total{endpoint="/v1/model",kind="auth"} 1.0',
                 'mlwright_requests_total{endpoint="/v1/model",status="401"} 1.0',
                 'mlwright_requests_total{endpoint="/v1/model",status="200"} 1.0',
                 'mlwright_errors_total{endpoint="/v1/predict",kind="too_large"} 1.0',
                 'mlwright_requests_total{endpoint="/v1/predict",status="413"} 1.0',
                 'mlwright_errors_total{endpoint="other",kind="internal"} 1.0',
                 'mlwright_requests_total{endpoint="other",status="500"} 1.0',
                 'mlwright_requests_total{endpoint="/healthz",status="200"} 1.0'):
        assert line in metrics, line


@pytest.mark.parametrize("module", ["app", "state", "routes", "middleware", "prometheus"])
def test_modules_stay_small(module: str) -> None:
    import mlwright.serve as serve

    root = Path(serve.__file__).parent
    files = [root / f"{module}.py"] if (root / f"{module}.py").exists() else sorted(
        (root / module).glob("*.py"))
    for path in files:
        assert len(path.read_text().splitlines()) < 600, path
