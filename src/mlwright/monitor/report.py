"""The monitor's result: :class:`MonitorReport`, as JSON (``to_dict``, what GET /v1/monitor
returns) and as a self-contained HTML page (``write_html``: drifting features first,
reference against current distributions, performance over time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright._json import json_safe

if TYPE_CHECKING:
    from mlwright.monitor.alerts import Alert
    from mlwright.monitor.drift import DatasetDrift, FeatureDrift
    from mlwright.monitor.performance import Performance
    from mlwright.monitor.quality import DataQuality, ServiceHealth

__all__ = ["MonitorReport"]


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace(
        "+00:00", "Z")


@dataclass
class MonitorReport:
    model: str
    window: str
    start: float | None
    end: float | None
    n_records: int                      # records in the window (all statuses)
    n_scored: int                       # records answered 200
    n_sampled: int                      # scored records whose inputs drift compared
    versions: dict[str, int]
    features: list[FeatureDrift]        # drifting first, then by drift score
    drift: DatasetDrift
    prediction_drift: FeatureDrift | None
    quality: DataQuality
    service: ServiceHealth
    performance: Performance | None
    reference: str
    alerts: list[Alert] = field(default_factory=list)
    generated: float = 0.0

    # the names the loop's drift trigger reads
    @property
    def dataset_drift(self) -> bool:
        return self.drift.drifted

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def drift_share(self) -> float:
        return self.drift.share

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "model": self.model, "window": self.window,
            "start": _iso(self.start), "end": _iso(self.end),
            "generated": _iso(self.generated),
            "n_records": self.n_records, "n_scored": self.n_scored,
            "n_sampled": self.n_sampled, "versions": self.versions,
            "reference": self.reference,
            "dataset_drift": {"detected": self.drift.drifted, **self.drift.to_dict()},
            "drifted_features": self.drifted_features, "drift_share": self.drift.share,
            # features no detector compared (why: dataset_drift.skipped)
            "not_checked": list(self.drift.skipped),
            "features": [f.to_dict() for f in self.features],
            "prediction_drift": None if self.prediction_drift is None
            else self.prediction_drift.to_dict(),
            "quality": self.quality.to_dict(), "service": self.service.to_dict(),
            "performance": None if self.performance is None else self.performance.to_dict(),
            "alerts": [a.to_dict() for a in self.alerts],
        })

    def write_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML report to ``path``."""
        from mlwright._html import Charts, write_page

        charts = Charts("mon")
        features = [{"f": f, "chart": charts.add(_distribution_figure(f), height=220)}
                    for f in self.features]
        pred = None if self.prediction_drift is None else charts.add(
            _distribution_figure(self.prediction_drift), height=220)
        perf_chart = None
        if self.performance is not None and len(self.performance.over_time) > 1:
            perf_chart = charts.add(_performance_figure(self.performance), height=260)
        span = f"{_iso(self.start) or '?'} to {_iso(self.end) or '?'}".replace("T", " ")
        return write_page(
            path, "monitor.html.j2", title=f"Monitoring: {self.model}",
            subtitle=f"window {self.window} · {self.n_records:,} records · {span}",
            charts=charts, r=self, features=features, pred_chart=pred,
            perf_chart=perf_chart, iso=_iso)


def _distribution_figure(f: FeatureDrift) -> dict[str, Any]:
    from mlwright._html import COLORS, chart_layout, fmt_num

    d = f.distribution
    if d.get("type") == "bins" and len(d.get("edges", [])) > 1:
        labels = [f"{fmt_num(a)} to {fmt_num(b)}" for a, b in pairwise(d["edges"])]
    else:
        labels = [str(v) for v in d.get("labels", [])]
    traces = [{"type": "bar", "name": "reference", "x": labels, "y": d.get("reference", []),
               "marker": {"color": COLORS["muted"]},
               "hovertemplate": "%{x}: %{y:.1%} (reference)<extra></extra>"},
              {"type": "bar", "name": "current", "x": labels, "y": d.get("current", []),
               "marker": {"color": COLORS["bad"] if f.drifted else COLORS["primary"]},
               "hovertemplate": "%{x}: %{y:.1%} (current)<extra></extra>"}]
    return {"data": traces, "layout": chart_layout(
        barmode="group", showlegend=True, legend={"orientation": "h", "y": 1.15},
        xaxis={"type": "category", "tickfont": {"size": 10}},
        yaxis={"tickformat": ".0%", "title": {"text": "share"}})}


def _performance_figure(perf: Performance) -> dict[str, Any]:
    from mlwright._html import COLORS, chart_layout

    pts = [p for p in perf.over_time if p["value"] is not None]
    x = [_iso(p["end"]) for p in pts]
    traces: list[dict[str, Any]] = []
    if all(p["low"] is not None for p in pts):
        traces.append({"type": "scatter", "x": x + x[::-1],
                       "y": [p["high"] for p in pts] + [p["low"] for p in pts][::-1],
                       "fill": "toself", "fillcolor": "rgba(79,70,229,0.15)",
                       "line": {"width": 0}, "hoverinfo": "skip", "name": "95% interval"})
    traces.append({"type": "scatter", "mode": "lines+markers", "x": x,
                   "y": [p["value"] for p in pts], "name": perf.metric,
                   "customdata": [p["n"] for p in pts],
                   "line": {"color": COLORS["primary"]},
                   "hovertemplate": "%{y:.4g} on %{customdata} records<extra></extra>"})
    if perf.offline is not None:
        traces.append({"type": "scatter", "mode": "lines", "x": [x[0], x[-1]],
                       "y": [perf.offline, perf.offline], "name": "validation",
                       "line": {"color": COLORS["muted"], "dash": "dash"}})
    return {"data": traces, "layout": chart_layout(
        showlegend=True, legend={"orientation": "h", "y": 1.15}, xaxis={"type": "date"},
        yaxis={"title": {"text": perf.metric}})}
