"""Alerts: thresholds from ``[monitor]`` in mlwright.toml, each alert written to the
``events`` table of the project database and, when ``monitor.webhook`` is set, POSTed there
as JSON (short timeout; a failed POST is logged, never raised: monitoring must not fail
because a chat hook is down)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlwright._json import dumps
from mlwright._logging import get_logger
from mlwright.store import events

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mlwright.config import MonitorConfig
    from mlwright.monitor.report import MonitorReport

__all__ = ["Alert", "evaluate_alerts", "post_webhook", "recent_alerts", "record_alerts"]

log = get_logger(__name__)

#: Live performance is judged only on at least this many labelled records.
MIN_LABELLED = 30


@dataclass
class Alert:
    kind: str
    severity: str
    message: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def evaluate_alerts(report: MonitorReport, config: MonitorConfig) -> list[Alert]:
    """The alerts a report raises under ``config``'s thresholds."""
    alerts: list[Alert] = []
    drift = report.drift
    drifted = report.drifted_features
    if drift.drifted:
        alerts.append(Alert("dataset_drift", "critical",
                            f"dataset drift: {drift.n_drifted} of {drift.n_features} features "
                            f"drifted ({drift.share:.0%} >= monitor.drift_share "
                            f"{config.drift_share:.0%}): {', '.join(drifted[:8])}",
                            {"features": drifted, "share": drift.share}))
    elif drifted:
        alerts.append(Alert("feature_drift", "warning",
                            f"{len(drifted)} feature(s) drifted: {', '.join(drifted[:8])}",
                            {"features": drifted, "share": drift.share}))
    pd_ = report.prediction_drift
    if pd_ is not None and pd_.drifted:
        alerts.append(Alert("prediction_drift", "warning",
                            f"the predictions drifted ({pd_.result.detector} "
                            f"{pd_.result.statistic:.3g})", pd_.result.to_dict()))
    svc = report.service
    if svc.n_records and svc.error_rate > config.max_error_rate:
        alerts.append(Alert("error_rate", "critical",
                            f"error rate {svc.error_rate:.1%} is above monitor.max_error_rate "
                            f"{config.max_error_rate:.1%}", {"status": svc.status_counts}))
    q = report.quality
    if q.flagged:
        alerts.append(Alert("data_quality", "warning",
                            f"data quality: {len(q.flagged)} column(s) with more missing "
                            f"values or unseen categories: {', '.join(q.flagged[:8])}",
                            {"columns": q.flagged}))
    perf = report.performance
    if (perf is not None and config.min_performance is not None and perf.value is not None
            and perf.n_labelled >= MIN_LABELLED):
        worse = perf.value < config.min_performance if perf.greater_is_better \
            else perf.value > config.min_performance
        if worse:
            alerts.append(Alert("performance", "critical",
                                f"live {perf.metric} {perf.value:.4g} on {perf.n_labelled} "
                                f"labelled records is worse than monitor.min_performance "
                                f"{config.min_performance:g}", perf.to_dict()))
    return alerts


def record_alerts(engine: Engine, model: str, alerts: list[Alert], *,
                  webhook: str | None = None, window: str = "") -> None:
    """Write ``alerts`` to the events table; POST each one to ``webhook`` when set."""
    if not alerts:
        return
    now = time.time()
    with engine.begin() as conn:
        conn.execute(events.insert(), [
            {"ts": now, "model": model, "source": "monitor", "kind": a.kind,
             "severity": a.severity, "message": a.message,
             "payload": dumps(a.details)} for a in alerts])
    if webhook:
        for a in alerts:
            post_webhook(webhook, {"model": model, "window": window, "ts": now,
                                   "source": "mlwright.monitor", **a.to_dict()})


def post_webhook(url: str, payload: dict[str, Any], *, timeout: float = 3.0) -> bool:
    """POST ``payload`` as JSON; False (and a logged warning) when it fails."""
    import httpx

    try:
        response = httpx.post(url, content=dumps(payload),
                              headers={"content-type": "application/json"}, timeout=timeout)
        response.raise_for_status()
        return True
    except httpx.HTTPError as exc:
        log.warning("monitor webhook %s failed: %s", url, exc)
        return False


def recent_alerts(engine: Engine, model: str, *, since: float, limit: int = 100
                  ) -> list[dict[str, Any]]:
    """The alerts recorded for ``model`` since ``since`` (unix seconds), newest first."""
    from sqlalchemy import select

    with engine.connect() as conn:
        rows = conn.execute(select(events.c.ts, events.c.kind, events.c.severity,
                                   events.c.message).where(
            events.c.model == model, events.c.ts >= since).order_by(
                events.c.ts.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]
