"""The dashboard's routes (``ui_router``), mounted at ``/ui`` by ``mlwright serve`` (a server
extension, behind the server's API keys) or served alone by ``mlwright ui``
(:func:`create_ui_app`, behind the same keys and the same middleware).

Pages are rendered on the server (Jinja, ``templates/ui/``); each panel is a fragment that
htmx loads into the page and reloads when its time range changes or an action moved an
alias; the fragments carry their Plotly figures as JSON, drawn by ``static/ui.js``. htmx and
Plotly's JS are vendored from npm (``frontend/``, ``make assets``), nothing from a CDN.

Reading needs the ``read`` scope (every GET); promote, rollback and pausing the loop need an
``admin`` key (403 otherwise, even on loopback where reading needs no key), ask for
confirmation in the browser, and are written to the audit log with the key's name.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

# At run time, not only for type checking: FastAPI reads the routes' annotations.
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from mlwright._logging import get_logger
from mlwright.exceptions import MlwrightError

if TYPE_CHECKING:
    from mlwright.ui.data import Dashboard, TimeRange

__all__ = ["PREFIX", "create_ui_app", "mount", "run_ui", "ui_router"]

log = get_logger(__name__)

PREFIX = "/ui"
STATIC = Path(__file__).with_name("static")
_CSS = Path(__file__).resolve().parent.parent / "templates" / "report.css"
#: URL path -> (file, media type): the only files served (no directory is exposed).
ASSETS = {
    f"{PREFIX}/static/htmx.min.js": (STATIC / "vendor" / "htmx.min.js", "text/javascript"),
    f"{PREFIX}/static/plotly.min.js": (STATIC / "vendor" / "plotly.min.js", "text/javascript"),
    f"{PREFIX}/static/ui.js": (STATIC / "ui.js", "text/javascript"),
    f"{PREFIX}/static/ui.css": (STATIC / "ui.css", "text/css"),
    f"{PREFIX}/static/report.css": (_CSS, "text/css"),
}
LOGIN = f"{PREFIX}/login"
OPEN_PATHS = frozenset({*ASSETS, LOGIN})
PANELS = ("models", "traffic", "drift", "performance", "decisions", "audit")
TIME_PANELS = ("traffic", "drift", "performance", "decisions")
PER_PAGE = 25
MAX_PER_PAGE = 100


def _render(template: str, **context: Any) -> str:
    from mlwright import __version__
    from mlwright._html import environment

    context.setdefault("when", _ago)
    return environment().get_template(f"ui/{template}").render(
        prefix=PREFIX, version=__version__, **context)


def _figures(figures: dict[str, Any]) -> Any:
    """The panel's figures as JSON safe inside a <script> block."""
    from markupsafe import Markup

    from mlwright._html import _figure_json, _script_safe

    body = ",".join(f'"{k}":{_figure_json(v)}' for k, v in figures.items())
    return Markup(_script_safe("{" + body + "}"))


def _ago(ts: float | None) -> str:
    if not ts:
        return ""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ----------------------------------------------------------------------------- panels

def _models_panel(dash: Dashboard, name: str | None, page: int, per_page: int) -> str:
    versions = dash.versions(name)
    total = len(versions)
    shown = versions[page * per_page:(page + 1) * per_page]
    since = time.time() - 86400
    alerts = {n: dash.alerts(n, since) for n in sorted({v.name for v in shown})}
    rows = []
    for v in shown:
        details = dash.details(v.name, str(v.version))
        lin = details["lineage"]
        metric = lin.get("metric") or ""
        key = [m for m in details["metrics"] if m["low"] is not None and (
            m["name"].endswith(f".metrics.{metric}"))]
        rows.append({"v": v, "lineage": lin, "metrics": key or [
            {"name": f"cv_{metric}", "value": v.cv_score, "low": None, "high": None}],
            "paused": None})
    return _render("panel_models.html.j2", rows=rows, name=name, alerts=alerts, page=page,
                   per_page=per_page, total=total, pages=max(1, math.ceil(total / per_page)),
                   when=_ago, paused={n: dash.paused(n) for n in alerts})


def _series(history: Any, pick: Any) -> tuple[list[float], list[Any]]:
    xs, ys = [], []
    for end, summary in history.windows:
        xs.append(end - history.step / 2)
        ys.append(None if summary is None or not summary.get("n") else pick(summary))
    return xs, ys


def _traffic_panel(dash: Dashboard, name: str, window: TimeRange, history: Any) -> str:
    from mlwright.ui.charts import bars_over_time, lines_over_time

    decisions = dash.decisions(name, window)
    x_range = (window.start, window.end)
    roles: dict[str, tuple[list[float], list[float]]] = {}
    for _, summary in history.windows:
        for key in (summary or {}).get("roles", {}):
            roles.setdefault(key, ([], []))
    for end, summary in history.windows:
        for key, (xs, ys) in roles.items():
            xs.append(end - history.step / 2)
            ys.append(((summary or {}).get("roles") or {}).get(key, 0))
    figures = {
        "rps": lines_over_time({"requests/s": _series(history, lambda s: s.get("rps"))},
                               decisions=decisions, x_range=x_range, y_title="requests/s"),
        "latency": lines_over_time({"p50": _series(history, lambda s: s.get("p50")),
                                    "p99": _series(history, lambda s: s.get("p99"))},
                                   decisions=decisions, x_range=x_range, y_title="ms"),
        "errors": lines_over_time(
            {"errors (status ≥ 400)": _series(history, lambda s: s.get("error_rate")),
             "rejected (422)": _series(history, lambda s: s.get("rejected_rate"))},
            decisions=decisions, x_range=x_range, y_title="share of records", percent=True),
        "versions": bars_over_time(roles, decisions=decisions, x_range=x_range,
                                   y_title="records"),
    }
    filled = history.filled
    totals = {"records": sum(int(s.get("n", 0)) for _, s in filled),
              "requests": sum(int(s.get("requests", 0) or 0) for _, s in filled)}
    return _render("panel_traffic.html.j2", name=name, window=window, figures=_figures(figures),
                   history=history, totals=totals, ranges=_ranges())


def _drift_panel(dash: Dashboard, name: str, window: TimeRange, history: Any,
                 feature: str | None) -> str:
    from mlwright.ui.charts import bars_over_time, drift_heatmap, lines_over_time

    decisions = dash.decisions(name, window)
    x_range = (window.start, window.end)
    filled = history.filled
    names: dict[str, int] = {}
    for _, s in filled:
        for f, (_, _, drifted, _) in (s.get("features") or {}).items():
            names[f] = names.get(f, 0) + int(bool(drifted))
    features = sorted(names, key=lambda f: (-names[f], f))
    if feature not in names:
        feature = features[0] if features else None
    xs = [end - history.step / 2 for end, _ in history.windows]
    flags = [[None if not s or f not in (s.get("features") or {})
              else float(bool(s["features"][f][2])) for _, s in history.windows]
             for f in features[:30]]
    threshold = next((s.get("drift_threshold") for _, s in filled), None)
    figures: dict[str, Any] = {
        "share": lines_over_time({"share of drifted features": _series(
            history, lambda s: s.get("drift_share"))}, decisions=decisions, x_range=x_range,
            y_title="share drifted", percent=True, threshold=threshold)}
    if features:
        figures["heatmap"] = drift_heatmap(features[:30], xs, flags, decisions=decisions,
                                           x_range=x_range)
    kinds: set[str] = set()
    if feature is not None:
        def stat(s: dict[str, Any]) -> Any:
            item = (s.get("features") or {}).get(feature)
            if item:
                kinds.add(item[3])
            return None if not item else item[0]

        def limit(s: dict[str, Any]) -> Any:
            item = (s.get("features") or {}).get(feature)
            return None if not item else item[1]

        figures["feature"] = lines_over_time(
            {f"{feature}": _series(history, stat), "threshold": _series(history, limit)},
            decisions=decisions, x_range=x_range, y_title="statistic")
    columns: dict[str, tuple[list[float], list[float]]] = {}
    for _, s in filled:
        for column in s.get("violations") or {}:
            columns.setdefault(column, ([], []))
    for end, s in history.windows:
        for column, (cx, cy) in columns.items():
            cx.append(end - history.step / 2)
            cy.append(((s or {}).get("violations") or {}).get(column, 0))
    figures["violations"] = bars_over_time(columns, decisions=decisions, x_range=x_range,
                                           y_title="violations")
    return _render("panel_drift.html.j2", name=name, window=window, figures=_figures(figures),
                   features=features, feature=feature, history=history, ranges=_ranges(),
                   n_violations=sum(sum(ys) for _, ys in columns.values()))


def _performance_panel(dash: Dashboard, name: str, window: TimeRange, perf: Any) -> str:
    from mlwright.ui.charts import performance_figure

    offline = dash.offline(name)
    decisions = dash.decisions(name, window)
    figures = {}
    if perf is not None and perf.over_time:
        figures["performance"] = performance_figure(
            perf.over_time, metric=perf.metric, offline=offline, decisions=decisions,
            x_range=(window.start, window.end))
    return _render("panel_performance.html.j2", name=name, window=window,
                   figures=_figures(figures), perf=perf, offline=offline, ranges=_ranges())


def _decisions_panel(dash: Dashboard, name: str, window: TimeRange) -> str:
    from mlwright.ui.charts import decisions_timeline

    decisions = dash.decisions(name, window)
    figures = {"timeline": decisions_timeline(decisions, x_range=(window.start, window.end))}
    runs = [d for d in decisions if d["action"] in ("retrain_started", "retrain_failed",
                                                    "promote", "refuse", "rollback", "keep")]
    return _render("panel_decisions.html.j2", name=name, window=window,
                   figures=_figures(figures), runs=runs[-20:][::-1], n_runs=len(runs),
                   when=_ago,
                   ranges=_ranges())


def _audit_panel(dash: Dashboard, name: str, page: int, per_page: int) -> str:
    rows, total = dash.audit_page(name, page, per_page)
    return _render("panel_audit.html.j2", name=name, rows=rows, page=page, per_page=per_page,
                   total=total, pages=max(1, math.ceil(total / per_page)), when=_ago)


def _ranges() -> list[str]:
    from mlwright.ui.data import RANGES

    return list(RANGES)


# ----------------------------------------------------------------------------- router

def ui_router(dashboard: Dashboard, *, title: str = "mlwright", default_model: str | None
              = None) -> APIRouter:
    """The dashboard's routes (all under :data:`PREFIX`)."""
    from fastapi import Form, HTTPException, Query
    from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse

    from mlwright.serve.keys import ApiKey, active_keys, hash_key
    from mlwright.serve.middleware.api_keys import COOKIE, KEY_SCOPE, presented_key
    from mlwright.ui.data import RANGES

    router = APIRouter(include_in_schema=False)
    dash = dashboard

    def html(text: str, status: int = 200, headers: dict[str, str] | None = None
             ) -> HTMLResponse:
        return HTMLResponse(text, status_code=status,
                            headers={"Cache-Control": "no-store", **(headers or {})})

    def known(name: str) -> str:
        if name not in dash.model_names():
            raise HTTPException(404, f"No registered model named {name!r}; the registry has "
                                     f"{', '.join(dash.model_names()) or 'none'}.")
        return name

    def time_range(name: str, label: str) -> TimeRange | None:
        if label not in RANGES:
            raise HTTPException(422, f"range must be one of {', '.join(RANGES)}; got "
                                     f"{label!r}.")
        return dash.time_range(name, label)

    def admin(request: Request) -> ApiKey:
        found: ApiKey | None = request.scope.get(KEY_SCOPE)
        headers = dict(request.scope["headers"])
        if found is None:  # reading needs no key here; acting always does
            key, from_cookie = presented_key(headers)
            found = active_keys(dash.engine).get(hash_key(key)) if key else None
            if from_cookie and b"hx-request" not in headers:
                found = None
        if found is None or "admin" not in found.allowed:
            who = f"The API key {found.name!r}" if found is not None else "This request"
            raise HTTPException(403, f"{who} has no admin scope: promote, rollback and "
                                     f"pausing the loop need an admin key (mlwright keys "
                                     f"create NAME --scope admin; sign in at {LOGIN}).")
        return found

    def time_panel(name: str, panel: str, window: TimeRange, feature: str | None) -> str:
        """A time panel's fragment, kept while its inputs are the same objects: settled
        windows (the history memo hands out the same object), the same live-performance
        result, no new audit entry, the same champion."""
        source: Any = None
        if panel in ("traffic", "drift"):
            source = dash.history(name, window)
        elif panel == "performance":
            source = dash.performance(name, window)
        key = ("fragment", panel, name, window, feature, dash.audit_mark(),
               dash.champion(name))
        hit = dash.fragments.get(key)
        if hit is not None and hit[0] is source:
            return str(hit[1])
        if panel == "traffic":
            text = _traffic_panel(dash, name, window, source)
        elif panel == "drift":
            text = _drift_panel(dash, name, window, source, feature)
        elif panel == "performance":
            text = _performance_panel(dash, name, window, source)
        else:
            text = _decisions_panel(dash, name, window)
        if panel not in ("traffic", "drift") or source.settled:
            dash.fragments.put(key, (source, text))
        return text

    def done(message: str, *, champion: str | None = None, loop: str | None = None
             ) -> HTMLResponse:
        """The action's message; the page's champion or loop state swapped out of band
        (htmx), and every panel told to reload (``mw-changed``)."""
        dash.forget_versions()
        text = f'<p class="mw-ok" role="status">{_escape(message)}</p>'
        if champion is not None:
            text += f'<strong id="champion" hx-swap-oob="true">{_escape(champion)}</strong>'
        if loop is not None:
            text += f'<strong id="loop-state" hx-swap-oob="true">{_escape(loop)}</strong>'
        return html(text, headers={"HX-Trigger": "mw-changed"})

    async def asset(request: Request) -> Response:
        path, media = ASSETS[request.url.path]
        return FileResponse(path, media_type=media,
                            headers={"Cache-Control": "max-age=86400"})

    for path in ASSETS:
        router.add_route(path, asset, include_in_schema=False)

    @router.get(PREFIX)
    @router.get(f"{PREFIX}/")
    def home() -> Response:
        target = default_model if default_model else None
        return RedirectResponse(f"{PREFIX}/m/{target}" if target else f"{PREFIX}/models",
                                status_code=303)

    @router.get(LOGIN)
    def login_page(error: str = "") -> HTMLResponse:
        return html(_render("login.html.j2", title=title, error=error))

    @router.post(LOGIN)
    def login(key: str = Form(...)) -> Response:
        found = active_keys(dash.engine).get(hash_key(key.strip()))
        if found is None:
            return html(_render("login.html.j2", title=title,
                                error="This key is unknown or revoked."), status=401)
        response = RedirectResponse(PREFIX, status_code=303)
        response.set_cookie(COOKIE, key.strip(), httponly=True, samesite="strict",
                            path="/", max_age=7 * 86400)
        return response

    @router.get(f"{PREFIX}/logout")
    def logout() -> Response:
        response = RedirectResponse(LOGIN, status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get(f"{PREFIX}/models")
    def models_page() -> HTMLResponse:
        return html(_render("models.html.j2", title=title, names=dash.model_names()))

    @router.get(f"{PREFIX}/m/{{name}}")
    def model_page(name: str, range: str = Query("all")) -> HTMLResponse:
        known(name)
        if range not in RANGES:
            range = "all"
        return html(_render("model.html.j2", title=title, name=name, range=range,
                            ranges=_ranges(), panels=PANELS, time_panels=TIME_PANELS,
                            champion=dash.champion(name), paused=dash.paused(name),
                            versions=dash.versions(name)))

    @router.get(f"{PREFIX}/panel/models")
    def all_models_panel(page: int = Query(0, ge=0),
                         per_page: int = Query(PER_PAGE, ge=1, le=MAX_PER_PAGE)
                         ) -> HTMLResponse:
        return html(_models_panel(dash, None, page, per_page))

    @router.get(f"{PREFIX}/m/{{name}}/panel/{{panel}}")
    def panel(name: str, panel: str, range: str = Query("all"),
              page: int = Query(0, ge=0),
              per_page: int = Query(PER_PAGE, ge=1, le=MAX_PER_PAGE),
              feature: str | None = Query(None)) -> HTMLResponse:
        known(name)
        if panel not in PANELS:
            raise HTTPException(404, f"No panel {panel!r}; panels: {', '.join(PANELS)}.")
        if panel == "models":
            return html(_models_panel(dash, name, page, per_page))
        if panel == "audit":
            return html(_audit_panel(dash, name, page, per_page))
        window = time_range(name, range)
        if window is None:
            return html(_render("panel_empty.html.j2", name=name, panel=panel))
        try:
            return html(time_panel(name, panel, window, feature))
        except MlwrightError as exc:
            return html(_render("panel_empty.html.j2", name=name, panel=panel,
                                reason=str(exc)))

    @router.get(f"{PREFIX}/m/{{name}}/v/{{version}}/{{what}}")
    def version_file(name: str, version: str, what: str) -> Response:
        from mlwright.run import RunFolder

        files = {"report": (RunFolder.REPORT, "text/html"),
                 "model_card": (RunFolder.MODEL_CARD, "text/plain; charset=utf-8")}
        if what not in files:
            raise HTTPException(404, f"Expected report or model_card, got {what!r}.")
        try:
            folder = dash.registry.run_folder(f"{known(name)}/{version}")
        except MlwrightError as exc:
            raise HTTPException(404, str(exc)) from None
        path = folder / files[what][0]
        if not path.is_file():
            raise HTTPException(404, f"{name}/{version} has no {files[what][0]} (write it "
                                     f"with 'mlwright report').")
        if what == "model_card":
            return PlainTextResponse(path.read_text(encoding="utf-8"),
                                     media_type=files[what][1])
        return FileResponse(path, media_type=files[what][1])

    @router.post(f"{PREFIX}/m/{{name}}/promote")
    def promote(request: Request, name: str, version: str = Form(...),
                reason: str = Form("")) -> HTMLResponse:
        key = admin(request)
        known(name)
        try:
            previous = dash.registry.promote(name, version, actor=f"ui:{key.name}",
                                             reason=reason or "promoted from the dashboard")
        except MlwrightError as exc:
            raise HTTPException(409, str(exc)) from None
        return done(f"{name}@champion -> {version}"
                    + (f" (was {previous}; rollback undoes it)." if previous else "."),
                    champion=version)

    @router.post(f"{PREFIX}/m/{{name}}/rollback")
    def rollback(request: Request, name: str, reason: str = Form("")) -> HTMLResponse:
        key = admin(request)
        known(name)
        try:
            current = dash.champion(name)
            target = dash.registry.rollback(name, actor=f"ui:{key.name}",
                                            reason=reason or "rolled back from the dashboard")
        except MlwrightError as exc:
            raise HTTPException(409, str(exc)) from None
        return done(f"{name}@champion -> {target} (rolled back from {current}).",
                    champion=target)

    @router.post(f"{PREFIX}/m/{{name}}/pause")
    def pause(request: Request, name: str, reason: str = Form(""),
              resume: bool = Form(False)) -> HTMLResponse:
        from mlwright.loop.pause import pause_loop, resume_loop

        key = admin(request)
        known(name)
        if resume:
            resume_loop(dash.database_url, name, actor=f"ui:{key.name}", reason=reason)
            return done(f"The loop of {name} runs again.", loop="running")
        pause_loop(dash.database_url, name, actor=f"ui:{key.name}",
                   reason=reason or "paused from the dashboard")
        return done(f"The loop of {name} is paused: no retrain, promotion or rollback "
                    f"until it is resumed.", loop="paused")

    return router


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


# ----------------------------------------------------------------------------- apps

def mount(app: FastAPI, context: Any) -> None:
    """Server extension (``mlwright serve``): the dashboard at ``/ui``, behind the server's
    API keys; its login page and assets are open."""
    from mlwright.ui.data import Dashboard

    project = context.project
    dash = Dashboard(context.database_url, context.tracking_uri,
                     monitor_config=project.monitor if project is not None else None)
    context.open_paths.update(OPEN_PATHS)
    app.include_router(ui_router(dash, title=f"mlwright: {context.model_name}",
                                 default_model=context.model_name))


class _UiKeys:
    """What the API-key middleware reads, for the dashboard served alone: the active keys,
    re-read every few seconds (a revoked key stops working without a restart)."""

    def __init__(self, engine: Any, require_key: bool, ttl: float = 5.0) -> None:
        from mlwright.serve.prometheus import ServerMetrics

        self.engine = engine
        self.require_key = require_key
        self.metrics = ServerMetrics()
        self.open_paths: set[str] = set(OPEN_PATHS)
        self.ttl = ttl
        self._keys: dict[str, Any] = {}
        self._read = -math.inf

    @property
    def keys(self) -> dict[str, Any]:
        from mlwright.serve.keys import active_keys

        if time.monotonic() - self._read > self.ttl:
            self._keys = active_keys(self.engine)
            self._read = time.monotonic()
        return self._keys

    @keys.setter
    def keys(self, value: dict[str, Any]) -> None:
        self._keys = value
        self._read = time.monotonic()


def create_ui_app(database_url: str, tracking_uri: str | None = None, *,
                  host: str = "127.0.0.1", require_api_key: bool | None = None,
                  monitor_config: Any = None, model: str | None = None) -> FastAPI:
    """The dashboard alone (``mlwright ui``). API keys are required when
    ``require_api_key`` (default: whenever ``host`` is not loopback)."""
    from mlwright.exceptions import ServingError
    from mlwright.serve.app import LOOPBACK
    from mlwright.serve.keys import active_keys
    from mlwright.serve.middleware.api_keys import ApiKeyMiddleware
    from mlwright.ui.data import Dashboard

    if require_api_key is None:
        require_api_key = host not in LOOPBACK
    dash = Dashboard(database_url, tracking_uri, monitor_config=monitor_config)
    if require_api_key and not active_keys(dash.engine):
        raise ServingError(
            f"The dashboard requires API keys (it binds to {host}, not loopback) but "
            f"{database_url} holds no active key. Create one with 'mlwright keys create NAME "
            f"--scope read', or bind to 127.0.0.1.")
    app = FastAPI(title="mlwright dashboard", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(ApiKeyMiddleware, state=_UiKeys(dash.engine, require_api_key))
    app.include_router(ui_router(dash, default_model=model))
    return app


def run_ui(database_url: str, tracking_uri: str | None = None, *, host: str = "127.0.0.1",
           port: int = 8765, require_api_key: bool | None = None, monitor_config: Any = None,
           model: str | None = None) -> None:
    """Serve the dashboard with uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    app = create_ui_app(database_url, tracking_uri, host=host,
                        require_api_key=require_api_key, monitor_config=monitor_config,
                        model=model)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False,
                                  log_level="warning")).run()
