"""HTTP side of monitoring: ``monitor_router`` (GET /v1/monitor, mounted by the server) and
Prometheus gauges of the latest drift scores (exported on the server's /metrics)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from mlwright.config import MonitorConfig
    from mlwright.monitor.report import MonitorReport

__all__ = ["monitor_router", "mount", "update_gauges"]

_gauges: dict[int, dict[str, Any]] = {}


def _metrics(registry: Any = None) -> dict[str, Any]:
    # Created once per registry (a second Gauge of the same name would be refused by
    # prometheus-client); the server passes its own registry, the one /metrics exports.
    from prometheus_client import REGISTRY, Gauge

    registry = REGISTRY if registry is None else registry
    if id(registry) not in _gauges:
        specs = {
            "feature": ("mlwright_feature_drift_score", "Drift statistic of a feature in the "
                        "latest monitoring window", ["model", "feature", "detector"]),
            "drifted": ("mlwright_feature_drifted", "1 if the feature drifted",
                        ["model", "feature"]),
            "share": ("mlwright_drift_share", "Share of features drifting", ["model"]),
            "dataset": ("mlwright_dataset_drift", "1 if the dataset drifted", ["model"]),
            "prediction": ("mlwright_prediction_drift_score",
                           "Drift statistic of the predictions", ["model"]),
            "performance": ("mlwright_live_performance", "Live metric from feedback",
                            ["model", "metric"]),
            "error_rate": ("mlwright_monitor_error_rate",
                           "Share of records answered with status >= 400", ["model"]),
        }
        # With several server workers, the worker that ran the latest window speaks for all.
        _gauges[id(registry)] = {key: Gauge(name, doc, labels, registry=registry,
                                            multiprocess_mode="mostrecent")
                                 for key, (name, doc, labels) in specs.items()}
    return _gauges[id(registry)]


def update_gauges(report: MonitorReport, registry: Any = None) -> None:
    """Set the drift gauges from ``report`` (on ``registry``, default prometheus-client's)."""
    g = _metrics(registry)
    for f in report.features:
        g["feature"].labels(report.model, f.name, f.result.detector).set(f.result.statistic)
        g["drifted"].labels(report.model, f.name).set(float(f.drifted))
    g["share"].labels(report.model).set(report.drift.share)
    g["dataset"].labels(report.model).set(float(report.drift.drifted))
    if report.prediction_drift is not None:
        g["prediction"].labels(report.model).set(report.prediction_drift.result.statistic)
    perf = report.performance
    if perf is not None and perf.value is not None:
        g["performance"].labels(report.model, perf.metric).set(perf.value)
    g["error_rate"].labels(report.model).set(report.service.error_rate)


def monitor_router(database: str, model: str, reference: Any, *,
                   config: MonitorConfig | None = None,
                   reference_for: Callable[[], Any] | None = None,
                   dependencies: list[Any] | None = None,
                   registry: Any = None) -> APIRouter:
    """An APIRouter with ``GET /v1/monitor?window=5000&version=`` returning the report's JSON.

    ``reference`` is what :func:`run_monitor` takes (a run folder, contract, Reference);
    ``reference_for`` (optional) is called per request instead, so a server that swaps its
    champion can hand the current one's folder. The reference is loaded once and cached.
    ``registry``: the prometheus-client CollectorRegistry the server's /metrics exports;
    each GET sets the drift gauges there.
    """
    from fastapi import APIRouter, HTTPException, Query

    from mlwright.config import MonitorConfig
    from mlwright.exceptions import ConfigError, MonitorError
    from mlwright.monitor.core import run_monitor
    from mlwright.monitor.reference import load_reference

    cfg = config or MonitorConfig.model_validate({})
    router = APIRouter(dependencies=dependencies or [])
    cache: dict[str, Any] = {}

    def _reference() -> Any:
        source = reference_for() if reference_for is not None else reference
        key = str(source)
        if key not in cache:
            cache.clear()
            cache[key] = load_reference(source)
        return cache[key]

    @router.get("/v1/monitor", tags=["monitor"], summary="Drift, data quality and live "
                "performance of the latest window")
    def get_monitor(window: str | None = Query(None, description="5000 or 1d / 6h"),
                    version: str | None = Query(None)) -> dict[str, Any]:
        try:
            report = run_monitor(database, model, reference=_reference(), window=window,
                                 config=cfg, version=version, alerts=False)
        except ConfigError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except MonitorError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        if registry is not None:
            update_gauges(report, registry)
        return report.to_dict()

    return router


def mount(app: Any, context: Any) -> None:
    """Server extension (``mlwright serve``): ``GET /v1/monitor`` for the served champion,
    its drift gauges on the server's ``/metrics``."""
    project = context.project
    app.include_router(monitor_router(
        context.database_url, context.model_name, None,
        config=project.monitor if project is not None else None,
        reference_for=context.champion_folder, registry=context.metrics_registry))
