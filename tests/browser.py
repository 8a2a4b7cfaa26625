"""Open a local HTML file in real headless chromium and report what happened (test helper).

``render(path)`` returns the console errors (and uncaught page errors) and facts about the
page: how many Plotly chart divs it has and which of them did not draw (no ``svg.main-svg``
inside). It drives Debian's ``/usr/bin/chromium`` through Playwright; it never downloads a
browser. Missing chromium is an error, not a skip: ``make browser`` installs it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CHROMIUM", "PageInfo", "render"]

CHROMIUM = os.environ.get("MLWRIGHT_CHROMIUM", "/usr/bin/chromium")
_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class PageInfo:
    title: str
    charts: list[str]  # ids of the Plotly chart divs (class "js-plotly-plot" once drawn)
    chart_divs: int  # divs with class "mw-chart" (the report placeholders)
    unrendered: list[str]  # chart divs without an svg.main-svg inside
    text: str  # the page's visible text
    charts_state: str | None  # "done" / "failed" on mlwright pages (data-mw-charts)
    charts_ms: float  # how long the page took to draw its charts
    requests: list[str] = field(default_factory=list)  # non-file URLs the page tried to load


def _chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        raise RuntimeError(
            f"chromium is not installed (looked for {CHROMIUM}); the HTML tests need it. "
            f"Install it with `make browser` (or: apt-get install chromium)."
        )
    return path


def render(path: str | Path, *, timeout_ms: int = 60_000, screenshot: str | Path | None = None
           ) -> tuple[list[str], PageInfo]:
    """Load ``path`` in headless chromium; return (console errors, page info).

    With ``screenshot``, also save a full-page PNG there (for looking at a report).
    """
    from playwright.sync_api import sync_playwright

    url = Path(path).resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.on("request", lambda r: requests.append(r.url)
                    if not r.url.startswith(("file:", "data:", "blob:", "about:")) else None)
            page.goto(url, wait_until="load", timeout=timeout_ms)
            # mlwright pages draw their charts in batches and then mark the <html> element.
            page.wait_for_function(
                """() => !document.getElementById("mw-figures")
                         || document.documentElement.dataset.mwCharts !== undefined""",
                timeout=timeout_ms)
            info = page.evaluate(
                """() => {
                  const divs = Array.from(document.querySelectorAll("div.mw-chart"));
                  const plots = Array.from(document.querySelectorAll(".js-plotly-plot"));
                  return {
                    title: document.title,
                    charts: plots.map(d => d.id),
                    chart_divs: divs.length,
                    unrendered: divs.filter(d => !d.querySelector("svg.main-svg")).map(d => d.id),
                    text: document.body.innerText,
                    charts_state: document.documentElement.dataset.mwCharts || null,
                    charts_ms: Number(document.documentElement.dataset.mwChartsMs || 0),
                  };
                }"""
            )
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return errors, PageInfo(requests=requests, **info)
