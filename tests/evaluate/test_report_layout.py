"""The report's lineage tables stay inside their card (issue 14 point 13: the data
fingerprint, one 71-character word, overflowed its table)."""

from __future__ import annotations

from pathlib import Path

from browser import _ARGS, _chromium
from mlwright._html import TEMPLATES

_LINEAGE = """<!doctype html><html><head><style>{css}</style></head><body><main>
<section id="lineage"><div class="mw-card" id="card"
 style="display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:18px">
<table class="mw-table compact" id="lineage-table"><tbody>
<tr><td class="muted">data fingerprint</td><td class="mono">sha256:{digest}</td></tr>
<tr><td class="muted">run folder</td><td class="mono">/srv/mlwright/runs/{digest}/model</td></tr>
</tbody></table>
<table class="mw-table compact"><tbody><tr><td class="muted">seed</td><td class="mono">0</td></tr>
</tbody></table>
<table class="mw-table compact"><tbody><tr><td class="muted">numpy</td><td class="mono">2.1</td>
</tr></tbody></table></div></section></main></body></html>"""


def test_a_fingerprint_breaks_inside_its_lineage_table(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "lineage.html"
    page_file.write_text(_LINEAGE.format(css=(TEMPLATES / "report.css").read_text(),
                                         digest="0123456789abcdef" * 4))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_file.as_uri())
            table, card = page.evaluate("""() => {
                const t = document.getElementById("lineage-table").getBoundingClientRect();
                const c = document.getElementById("card").getBoundingClientRect();
                return [[t.left, t.right], [c.left, c.right]];
            }""")
        finally:
            browser.close()
    assert card[0] <= table[0] and table[1] <= card[1] + 0.5, (table, card)
    assert table[1] - table[0] < (card[1] - card[0]) / 2  # one grid column, not the card
