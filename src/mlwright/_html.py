"""Self-contained HTML pages for every report: one Jinja2 shell, Plotly's JS inlined once.

A page must open anywhere, offline, from a single file. So the Plotly bundle is written into
the page once, every figure is embedded as JSON in one ``<script type="application/json">``
block, and a few lines of JS draw each into its ``<div>`` with ``Plotly.newPlot``. Figures
can be Plotly ``Figure`` objects or plain ``{"data": [...], "layout": {...}}`` dicts; plain
dicts skip Plotly's Python-side validation, which matters for pages with a hundred charts.

Reports extend ``templates/base.html.j2`` (blocks ``content`` and ``head``) and call
:func:`render_page` or :func:`write_page`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

__all__ = [
    "COLORS",
    "Charts",
    "chart_layout",
    "environment",
    "fmt_num",
    "fmt_pct",
    "fmt_size",
    "plotly_js",
    "render_page",
    "write_page",
]

TEMPLATES = Path(__file__).with_name("templates")
COLORS = {
    "primary": "#4f46e5",
    "secondary": "#0ea5e9",
    "muted": "#9ca3af",
    "good": "#16a34a",
    "bad": "#dc2626",
    "text": "#1f2937",
    "grid": "#e5e7eb",
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


@cache
def plotly_js() -> str:
    """The Plotly bundle shipped with the ``plotly`` package (read once per process)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def chart_layout(**overrides: Any) -> dict[str, Any]:
    """The house layout for a small chart; keyword arguments override or extend it."""
    layout: dict[str, Any] = {
        "margin": {"l": 48, "r": 12, "t": 12, "b": 40},
        "font": {"family": FONT, "size": 12, "color": COLORS["text"]},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "bargap": 0.08,
        "showlegend": False,
        "xaxis": {"gridcolor": COLORS["grid"], "zeroline": False, "automargin": True},
        "yaxis": {"gridcolor": COLORS["grid"], "zeroline": False, "automargin": True},
        "hoverlabel": {"font": {"family": FONT}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


class Charts:
    """The figures of one page. :meth:`add` returns the ``<div>`` to place in the template."""

    def __init__(self, prefix: str = "chart") -> None:
        self.prefix = prefix
        self._figures: list[tuple[str, str]] = []  # (div id, figure JSON)

    def __len__(self) -> int:
        return len(self._figures)

    @property
    def ids(self) -> list[str]:
        return [div_id for div_id, _ in self._figures]

    def add(self, figure: Any, *, height: int = 260, css_class: str = "") -> Markup:
        """Register ``figure`` (a Plotly Figure or a dict) and return its placeholder div."""
        from markupsafe import Markup

        div_id = f"{self.prefix}-{len(self._figures)}"
        self._figures.append((div_id, _figure_json(figure)))
        cls = f"mw-chart {css_class}".strip()
        return Markup(f'<div id="{div_id}" class="{cls}" style="height:{int(height)}px"></div>')

    def to_json(self) -> str:
        """All figures as one JSON object keyed by div id, safe inside a ``<script>``."""
        body = ",".join(f'"{div_id}":{text}' for div_id, text in self._figures)
        return _script_safe("{" + body + "}")


def _figure_json(figure: Any) -> str:
    if isinstance(figure, dict):
        import orjson

        return orjson.dumps(figure, option=orjson.OPT_SERIALIZE_NUMPY
                            | orjson.OPT_NON_STR_KEYS).decode()
    import plotly.io as pio

    return pio.to_json(figure, validate=False)


def _script_safe(text: str) -> str:
    # "</script>" or "<!--" inside the JSON would end the script block early.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment for ``templates/``, with number-formatting filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(num=fmt_num, pct=fmt_pct, size=fmt_size)
    return env


def render_page(template: str, *, title: str, charts: Charts | None = None,
                subtitle: str = "", **context: Any) -> str:
    """Render ``template`` (which extends ``base.html.j2``) into a self-contained page."""
    from markupsafe import Markup

    from mlwright import __version__

    charts = charts if charts is not None else Charts()
    return environment().get_template(template).render(
        title=title,
        subtitle=subtitle,
        css=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        plotly_js=Markup(plotly_js()) if len(charts) else "",
        figures_json=Markup(charts.to_json()),
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **context,
    )


def write_page(path: str | Path, template: str, **kwargs: Any) -> Path:
    """Render a page and write it to ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(template, **kwargs), encoding="utf-8")
    return path


def fmt_num(value: Any, digits: int = 4) -> str:
    """Thousands separators for integers, ``digits`` significant digits for the rest."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage; tiny non-zero shares do not round to 0%."""
    if value is None:
        return "n/a"
    if 0 < value < 10 ** -(digits + 2):
        return f"<{10 ** -digits:g}%"
    return f"{100 * value:.{digits}f}%"


def fmt_size(n_bytes: float) -> str:
    """Bytes in KB/MB/GB (powers of 1024)."""
    if abs(n_bytes) < 1024:
        return f"{n_bytes:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        n_bytes /= 1024
        if abs(n_bytes) < 1024 or unit == "TB":
            break
    return f"{n_bytes:.1f} {unit}"
