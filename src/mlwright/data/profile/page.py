"""The profile's HTML page: chart data from :mod:`mlwright.data.profile` drawn with Plotly.

Charts are plain Plotly figure dicts (no Python-side validation: a wide table has a hundred
of them); the page shell, CSS and the inlined Plotly bundle come from :mod:`mlwright._html`.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright._html import COLORS, Charts, chart_layout, fmt_num, fmt_pct, fmt_size, write_page
from mlwright.data.kinds import ColumnKind

if TYPE_CHECKING:
    from mlwright.data.profile.result import ColumnProfile, Profile

__all__ = ["chart_figure", "render_profile"]

_HOVER_COUNT = "%{y:,} rows<extra></extra>"


def chart_figure(chart: dict[str, Any]) -> dict[str, Any] | None:
    """A Plotly figure dict for one column's chart data (None when there is nothing to draw)."""
    kind = chart.get("type")
    if kind == "histogram":
        edges, counts = chart["edges"], chart["counts"]
        centers = [(a + b) / 2 for a, b in pairwise(edges)]
        widths = [b - a for a, b in pairwise(edges)]
        ranges = [f"{fmt_num(a)} to {fmt_num(b)}" for a, b in pairwise(edges)]
        trace = {"type": "bar", "x": centers, "y": counts, "width": widths,
                 "customdata": ranges, "marker": {"color": COLORS["primary"]},
                 "hovertemplate": "%{customdata}: %{y:,} rows<extra></extra>"}
        return {"data": [trace], "layout": chart_layout(
            bargap=0.02, xaxis={"title": {"text": chart.get("x_title", "")}},
            yaxis={"title": {"text": "rows"}})}
    if kind == "bar":
        labels = [str(v) for v in chart["labels"]]
        counts = list(chart["counts"])
        colors = [COLORS["primary"]] * len(labels)
        for extra, name in (("other", "(other values)"), ("missing", "(missing)")):
            if chart.get(extra):
                labels.append(name)
                counts.append(chart[extra])
                colors.append(COLORS["muted"])
        if not labels:
            return None
        # Short labels read best as columns; long or many labels as horizontal bars.
        if len(labels) <= 8 and max(len(s) for s in labels) <= 12:
            trace = {"type": "bar", "x": labels, "y": counts, "marker": {"color": colors},
                     "hovertemplate": "%{x}: " + _HOVER_COUNT}
            return {"data": [trace], "layout": chart_layout(
                xaxis={"type": "category"}, yaxis={"title": {"text": "rows"}})}
        trace = {"type": "bar", "orientation": "h", "y": labels[::-1], "x": counts[::-1],
                 "marker": {"color": colors[::-1]},
                 "hovertemplate": "%{y}: %{x:,} rows<extra></extra>"}
        return {"data": [trace], "layout": chart_layout(
            yaxis={"type": "category", "tickfont": {"size": 11}},
            xaxis={"title": {"text": "rows"}}, margin={"l": 8})}
    if kind == "timeline":
        trace = {"type": "bar", "x": chart["starts"], "y": chart["counts"],
                 "marker": {"color": COLORS["secondary"]},
                 "hovertemplate": "from %{x}: " + _HOVER_COUNT}
        return {"data": [trace], "layout": chart_layout(
            bargap=0.05, xaxis={"type": "date"}, yaxis={"title": {"text": "rows"}})}
    return None


def _chart_height(chart: dict[str, Any]) -> int:
    if chart.get("type") == "bar":
        n = len(chart["labels"]) + bool(chart.get("other")) + bool(chart.get("missing"))
        if n > 8:
            return min(520, 60 + 19 * n)
    return 260


def _chart_note(chart: dict[str, Any], column: ColumnProfile) -> str:
    notes = []
    if chart.get("below") or chart.get("above"):
        notes.append(f"Central 98% of values shown; {chart['below']:,} below and "
                     f"{chart['above']:,} above the range are left out.")
    if chart.get("type") == "timeline":
        notes.append(f"Rows per {_span(chart['bin_days'])}.")
    if column.stats.get("sampled"):
        notes.append("Text statistics from a sample of 10,000 values.")
    return " ".join(notes)


def _span(days: float) -> str:
    if days < 1 / 12:
        return f"{days * 1440:.0f} minutes"
    if days < 2:
        return f"{days * 24:.1f} hours"
    return f"{days:.1f} days"


def _stat_rows(column: ColumnProfile) -> list[tuple[str, str]]:
    rows = [("Values", fmt_num(column.count)),
            ("Missing", f"{fmt_num(column.missing)} ({fmt_pct(column.missing_share)})"),
            ("Distinct", fmt_num(column.distinct))]
    s = column.stats
    if column.kind is ColumnKind.IDENTIFIER and "min" in s:
        return [*rows, ("Min", fmt_num(s["min"])), ("Max", fmt_num(s["max"]))]
    if "mean" in s:
        q = s["quantiles"]
        rows += [("Mean", fmt_num(s["mean"])), ("Std", fmt_num(s["std"])),
                 ("Min", fmt_num(s["min"])),
                 ("5% · 25%", f"{fmt_num(q['0.05'])} · {fmt_num(q['0.25'])}"),
                 ("Median", fmt_num(q["0.5"])),
                 ("75% · 95%", f"{fmt_num(q['0.75'])} · {fmt_num(q['0.95'])}"),
                 ("Max", fmt_num(s["max"])), ("Zeros", fmt_num(s["zeros"]))]
        if s.get("negatives"):
            rows.append(("Negative", fmt_num(s["negatives"])))
        if s.get("infinite"):
            rows.append(("Infinite", fmt_num(s["infinite"])))
    if column.kind is ColumnKind.DATETIME and s.get("min"):
        rows += [("First", s["min"].replace("T", " ")), ("Last", s["max"].replace("T", " ")),
                 ("Span", f"{s['span_days']:,.1f} days")]
    if "mean_chars" in s:
        rows.append(("Length (chars)", f"{s['min_chars']:,} … {s['max_chars']:,}, "
                                       f"mean {s['mean_chars']:.0f}"))
        if "mean_words" in s:
            rows.append(("Words per value", f"{s['mean_words']:.1f}"))
    return rows


def _overview(p: Profile) -> list[dict[str, str]]:
    cells = max(1, p.n_rows * p.n_columns)
    stats = [
        {"label": "Rows", "value": fmt_num(p.n_rows)},
        {"label": "Columns", "value": fmt_num(p.n_columns)},
        {"label": "Missing cells", "value": fmt_pct(p.missing_cells / cells),
         "note": f"{p.missing_cells:,} cells"},
        {"label": "Duplicate rows", "value": fmt_num(p.duplicate_rows),
         "note": fmt_pct(p.duplicate_rows / p.n_rows)},
        {"label": "Memory", "value": fmt_size(p.memory_bytes)},
    ]
    if p.target is not None and p.task is not None:
        stats.append({"label": "Target", "value": p.target, "note": f"task: {p.task.value}"})
    if p.imbalance_ratio is not None:
        stats.append({"label": "Class imbalance", "value": f"{p.imbalance_ratio:.1f} : 1",
                      "note": "largest to smallest class"})
    critical = sum(w.severity.value == "critical" for w in p.warnings)
    stats.append({"label": "Warnings", "value": fmt_num(len(p.warnings)),
                  "note": f"{critical} critical" if critical else ""})
    return [{"note": "", **stat} for stat in stats]


def _target_chart(p: Profile, charts: Charts) -> Any:
    dist = p.target_distribution
    if not dist:
        return None
    if dist["type"] == "numeric":
        figure = chart_figure(dist["chart"])
    else:
        classes = dist["classes"][:30]
        figure = chart_figure({"type": "bar", "labels": [c["value"] for c in classes],
                               "counts": [c["count"] for c in classes]})
    return charts.add(figure, height=240) if figure else None


def render_profile(p: Profile, path: Path, *, title: str | None = None) -> Path:
    """Write the profile page to ``path`` and return it."""
    charts = Charts("chart")
    anchors = {c.name: f"col-{i}" for i, c in enumerate(p.columns)}
    by_column: dict[str, list[Any]] = {}
    for w in p.warnings:
        if w.column is not None:
            by_column.setdefault(w.column, []).append(w)
    target_chart = _target_chart(p, charts)
    columns = []
    for c in p.columns:
        figure = chart_figure(c.chart) if c.chart else None
        columns.append({
            "col": c, "anchor": anchors[c.name], "warnings": by_column.get(c.name, []),
            "stats": _stat_rows(c),
            "chart": charts.add(figure, height=_chart_height(c.chart)) if figure else "",
            "note": _chart_note(c.chart, c) if c.chart else "",
            # Top values say nothing when every value is unique, nor for timestamps.
            "top_values": [] if c.kind is ColumnKind.DATETIME or all(
                v["count"] == 1 for v in c.top_values) else c.top_values[:8],
        })
    kind_counts = Counter(c.kind.value for c in p.columns).most_common()
    subtitle = (f"{p.n_rows:,} rows, {p.n_columns:,} columns"
                + (f" · target {p.target} ({p.task.value})" if p.target and p.task else ""))
    return write_page(
        path, "profile.html.j2", title=title or "Data profile", subtitle=subtitle,
        charts=charts, p=p, columns=columns, anchors=anchors, overview=_overview(p),
        kind_counts=kind_counts, target_chart=target_chart,
    )
