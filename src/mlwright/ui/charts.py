"""The dashboard's figures as plain Plotly dicts (no Python-side validation), in the house
layout of the reports (:func:`mlwright._html.chart_layout`). Every time chart marks the
alias moves and pauses as labelled vertical lines (and the loop's other decisions too while
they are few); the decisions panel draws all of them as a timeline.

Times travel as epoch milliseconds and values with 4 significant digits: a year of windows
is a few hundred points per trace, and the page must stay light."""

from __future__ import annotations

from typing import Any

from mlwright._html import COLORS, chart_layout

__all__ = ["DECISION_COLORS", "bars_over_time", "decisions_timeline", "drift_heatmap",
           "lines_over_time", "ms", "performance_figure"]

#: Audit actions drawn on the time charts, with their colours.
DECISION_COLORS = {"promote": COLORS["good"], "rollback": COLORS["bad"],
                   "retrain_started": COLORS["secondary"], "refuse": "#f59e0b",
                   "register": COLORS["muted"], "loop_paused": "#7c3aed",
                   "loop_resumed": "#7c3aed", "keep": COLORS["muted"]}
_MAJOR = frozenset({"promote", "rollback", "loop_paused", "loop_resumed"})
_PALETTE = ["#4f46e5", "#0ea5e9", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0d9488",
            "#db2777", "#65a30d", "#9ca3af"]


def ms(ts: float) -> int:
    """Epoch milliseconds: what a Plotly date axis reads, shorter than ISO text."""
    return round(ts * 1000)


def _r(values: list[Any]) -> list[Any]:
    return [None if v is None else float(f"{v:.4g}") for v in values]


def _decorated(layout: dict[str, Any], decisions: list[dict[str, Any]],
               x_range: tuple[float, float]) -> dict[str, Any]:
    shapes, notes = [], []
    drawn = [d for d in decisions if d["action"] in DECISION_COLORS]
    # Many decisions (a year of retrains): only the alias moves and pauses are drawn; the
    # decisions panel's timeline shows the rest.
    if len(drawn) > 12:
        drawn = [d for d in drawn if d["action"] in _MAJOR]
    for d in drawn:
        color = DECISION_COLORS[d["action"]]
        x = ms(d["ts"])
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                       "y0": 0, "y1": 1, "line": {"color": color, "width": 1.5,
                                                  "dash": "dot"}})
        label = d["action"].replace("_", " ") + (f" v{d['version']}" if d.get("version")
                                                 else "")
        notes.append({"x": x, "y": 1, "xref": "x", "yref": "paper", "text": label,
                      "showarrow": False, "yanchor": "bottom", "textangle": -30,
                      "font": {"size": 10, "color": color}})
    layout["shapes"] = shapes
    layout["annotations"] = notes
    layout["xaxis"] = {**layout.get("xaxis", {}), "type": "date",
                       "range": [ms(x_range[0]), ms(x_range[1])]}
    layout["margin"] = {**layout.get("margin", {}), "t": 36 if notes else 12}
    return layout


def lines_over_time(series: dict[str, tuple[list[float], list[float | None]]], *,
                    decisions: list[dict[str, Any]], x_range: tuple[float, float],
                    y_title: str, percent: bool = False,
                    threshold: float | None = None) -> dict[str, Any]:
    """One line per series name: (times, values); ``threshold`` a dashed horizontal line."""
    traces = []
    for i, (name, (xs, ys)) in enumerate(series.items()):
        # Markers only while they are few: each one is an SVG node to draw.
        mode = "lines+markers" if len(xs) <= 60 else "lines"
        traces.append({"type": "scatter", "mode": mode, "name": name,
                       "x": [ms(x) for x in xs], "y": _r(ys), "connectgaps": False,
                       "marker": {"size": 4}, "line": {"color": _PALETTE[i % len(_PALETTE)],
                                                       "width": 1.5}})
    if threshold is not None:
        traces.append({"type": "scatter", "mode": "lines", "name": "threshold",
                       "x": [ms(x_range[0]), ms(x_range[1])], "y": [threshold, threshold],
                       "line": {"color": COLORS["bad"], "dash": "dash", "width": 1},
                       "hoverinfo": "skip"})
    layout = chart_layout(showlegend=len(traces) > 1, legend={"orientation": "h", "y": -0.25},
                          yaxis={"title": {"text": y_title}, "rangemode": "tozero",
                                 **({"tickformat": ".1%"} if percent else {})})
    return {"data": traces, "layout": _decorated(layout, decisions, x_range)}


def bars_over_time(series: dict[str, tuple[list[float], list[float]]], *,
                   decisions: list[dict[str, Any]], x_range: tuple[float, float],
                   y_title: str) -> dict[str, Any]:
    """Stacked bars, one colour per series name."""
    traces = [{"type": "bar", "name": name, "x": [ms(x) for x in xs], "y": _r(ys),
               "marker": {"color": _PALETTE[i % len(_PALETTE)]}}
              for i, (name, (xs, ys)) in enumerate(series.items())]
    layout = chart_layout(barmode="stack", showlegend=True,
                          legend={"orientation": "h", "y": -0.25},
                          yaxis={"title": {"text": y_title}})
    return {"data": traces, "layout": _decorated(layout, decisions, x_range)}


def drift_heatmap(features: list[str], xs: list[float], flags: list[list[float | None]], *,
                  decisions: list[dict[str, Any]], x_range: tuple[float, float]
                  ) -> dict[str, Any]:
    """Which features drifted in which window (1 drifted, 0 not, blank: not compared)."""
    trace = {"type": "heatmap", "x": [ms(x) for x in xs], "y": features, "z": flags,
             "zmin": 0, "zmax": 1, "showscale": False, "xgap": 1, "ygap": 1,
             "colorscale": [[0, "#e0e7ff"], [1, COLORS["bad"]]],
             "hovertemplate": "%{y} at %{x}: %{z}<extra>1 = drifted</extra>"}
    layout = chart_layout(yaxis={"automargin": True, "type": "category"})
    return {"data": [trace], "layout": _decorated(layout, decisions, x_range)}


def performance_figure(points: list[dict[str, Any]], *, metric: str,
                       offline: dict[str, Any] | None, decisions: list[dict[str, Any]],
                       x_range: tuple[float, float]) -> dict[str, Any]:
    """The live metric per window with its 95% interval, against the offline CV band."""
    xs = [ms((p["start"] + p["end"]) / 2) for p in points]
    traces: list[dict[str, Any]] = []
    if offline and offline.get("value") is not None:
        x0, x1 = ms(x_range[0]), ms(x_range[1])
        if offline.get("low") is not None:
            traces.append({"type": "scatter", "x": [x0, x1, x1, x0],
                           "y": [offline["low"], offline["low"], offline["high"],
                                 offline["high"]],
                           "fill": "toself", "fillcolor": "rgba(156,163,175,0.25)",
                           "line": {"width": 0}, "hoverinfo": "skip",
                           "name": "offline CV 95% interval"})
        traces.append({"type": "scatter", "mode": "lines", "x": [x0, x1],
                       "y": [offline["value"], offline["value"]],
                       "name": f"offline CV (v{offline['version']})",
                       "line": {"color": COLORS["muted"], "dash": "dash"}})
    traces.append({
        "type": "scatter", "mode": "markers+lines", "name": f"live {metric}", "x": xs,
        "y": _r([p["value"] for p in points]), "customdata": [p["n"] for p in points],
        "line": {"color": COLORS["primary"]},
        "error_y": {"type": "data", "symmetric": False,
                    "array": _r([None if p["high"] is None or p["value"] is None
                                 else p["high"] - p["value"] for p in points]),
                    "arrayminus": _r([None if p["low"] is None or p["value"] is None
                                      else p["value"] - p["low"] for p in points]),
                    "color": COLORS["primary"], "thickness": 1},
        "hovertemplate": "%{y:.4g} on %{customdata} labelled records<extra></extra>"})
    layout = chart_layout(showlegend=True, legend={"orientation": "h", "y": -0.25},
                          yaxis={"title": {"text": metric}})
    return {"data": traces, "layout": _decorated(layout, decisions, x_range)}


def decisions_timeline(decisions: list[dict[str, Any]], *,
                       x_range: tuple[float, float]) -> dict[str, Any]:
    """Every decision of the range on one row per kind of action, the reason on hover."""
    actions = sorted({d["action"] for d in decisions})
    traces = []
    for i, action in enumerate(actions):
        rows = [d for d in decisions if d["action"] == action]
        traces.append({
            "type": "scatter", "mode": "markers", "name": action.replace("_", " "),
            "x": [ms(d["ts"]) for d in rows], "y": [action.replace("_", " ")] * len(rows),
            "text": [(f"v{d['version']} " if d.get("version") else "") + (d["reason"] or "")
                     [:80] for d in rows],
            "hovertemplate": "%{text}<extra>%{x}</extra>",
            "marker": {"size": 9, "symbol": "line-ns-open", "line": {"width": 2},
                       "color": DECISION_COLORS.get(action, _PALETTE[i % len(_PALETTE)])}})
    layout = chart_layout(yaxis={"type": "category", "automargin": True},
                          margin={"l": 110})
    return {"data": traces, "layout": _decorated(layout, decisions, x_range)}
