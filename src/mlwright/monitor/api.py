"""HTTP side of monitoring: ``monitor_router`` (GET /v1/monitor, mounted by the server) and
Prometheus gauges of the latest drift scores (exported on the server's /metrics)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from mlwright.config import MonitorConfig
    from mlwright.monitor.report import MonitorReport

__all__ = ["monitor_router", "update_gauges"]

_gauges: dict[str, Any] = {}


def _metrics() -> dict[str, Any]:
    # Created once per process on the default registry (a second Gauge of the same name
    # would be refused by prometheus-client).
    if not _gauges:
        from prometheus_client import Gauge

        _gauges["feature"] = Gauge(
            "mlwright_feature_drift_score", "Drift statistic of a feature in the latest "
            "monitoring window (detector's statistic or distance)",
            ["model", "feature", "detector"])
        _gauges["drifted"] = Gauge("mlwright_feature_drifted", "1 if the feature drifted",
                                   ["model", "feature"])
        _gauges["share"] = Gauge("mlwright_drift_share", "Share of features drifting",
                                 ["model"])
        _gauges["dataset"] = Gauge("mlwright_dataset_drift", "1 if the dataset drifted",
                                   ["model"])
        _gauges["prediction"] = Gauge("mlwright_prediction_drift_score",
                                      "Drift statistic of the predictions", ["model"])
        _gauges["performance"] = Gauge("mlwright_live_performance",
                                       "Live metric from feedback", ["model", "metric"])
        _gauges["error_rate"] = Gauge("mlwright_monitor_error_rate",
                                      "Share of records answered with status >= 400",
                                      ["model"])
    return _gauges


def update_gauges(report: MonitorReport) -> None:
    g = _metrics()
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
                   dependencies: list[Any] | None = None) -> APIRouter:
    """An APIRouter with ``GET /v1/monitor?window=5000&version=`` returning the report's JSON.

    ``reference`` is what :func:`run_monitor` takes (a run folder, contract, Reference);
    ``reference_for`` (optional) is called per request instead, so a server that swaps its
    champion can hand the current one's folder. The reference is loaded once and cached.
    """
    from fastapi import APIRouter, HTTPException, Query

    from mlwright.config import MonitorConfig
    from mlwright.exceptions import ConfigError, MonitorError
    from mlwright.monitor.core import run_monitor
    from mlwright.monitor.reference import load_reference

    cfg = config or MonitorConfig()
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
        return report.to_dict()

    return router
