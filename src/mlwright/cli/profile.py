"""The ``profile`` command's work and Rich output.

Kept apart from ``data.py`` so that the command there stays a few lines; this is still
CLI code, the only place allowed to print.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mlwright.cli._common import console, err_console, load_table

if TYPE_CHECKING:
    from mlwright.data.profile import Profile

__all__ = ["print_profile", "run_profile"]

#: Columns listed in the terminal table; the HTML page has them all.
SHOWN_COLUMNS = 60
_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
_KIND_STYLE = {"numeric": "blue", "categorical": "green", "high_cardinality": "green",
               "boolean": "green", "datetime": "magenta", "text": "dark_orange",
               "identifier": "dim", "constant": "dim"}


def run_profile(data: str, *, target: str | None, table: str | None, query: str | None,
                sample: int | None, delimiter: str | None, encoding: str | None,
                out: Path, sample_rows: int | None = None) -> tuple[Profile, Path, Path]:
    """Load DATA, profile it, write ``profile.json`` and ``profile.html`` under ``out``; a
    Parquet dataset out of core (``sample_rows``, or larger than memory): its figures over
    every row, the rest from a sample (:func:`profile_parquet`)."""
    from mlwright.data.dataset import larger_than_memory
    from mlwright.data.profile import profile

    if not (table or query or sample) and (sample_rows or larger_than_memory(data)):
        from mlwright.api import LARGE_SAMPLE_ROWS
        from mlwright.data.dataset import open_parquet_dataset, sample_of
        from mlwright.data.profile.outofcore import profile_parquet

        dataset = open_parquet_dataset(data, target=target)
        with err_console.status(f"Profiling {dataset.n_rows:,} rows out of core…") as status:
            rows, _ = sample_of(dataset, sample_rows or LARGE_SAMPLE_ROWS)
            result = profile_parquet(dataset, rows, target)
            status.update("Writing profile.json and profile.html…")
            json_path = out / "profile.json"
            result.to_json(json_path)
            html_path = result.to_html(out / "profile.html", title=f"Data profile: {data}")
        return result, json_path, html_path
    df = load_table(data, table=table, query=query, sample=sample, delimiter=delimiter,
               encoding=encoding)
    with err_console.status(f"Profiling {len(df):,} rows, {df.shape[1]} columns…") as status:
        result = profile(df, target)
        status.update("Writing profile.json and profile.html…")
        json_path = out / "profile.json"
        result.to_json(json_path)
        source = data if not (table or query) else f"{data} ({table or query})"
        html_path = result.to_html(out / "profile.html", title=f"Data profile: {source}")
    return result, json_path, html_path


def print_profile(p: Profile, json_path: Path, html_path: Path) -> None:
    title = f"{p.n_rows:,} rows, {p.n_columns} columns"
    if p.target is not None and p.task is not None:
        title += f"; target [bold]{escape(p.target)}[/] ({p.task.value})"
        if p.imbalance_ratio is not None:
            title += f", imbalance {p.imbalance_ratio:.1f}:1"
    table = Table(title=title, title_justify="left")
    # One line per column: the summary gets what the terminal has left, cut with an ellipsis.
    name_width = min(30, max(len(c.name) for c in p.columns) + 2)
    kind_width = max(len(c.kind.value) for c in p.columns)
    rest = console.width - name_width - kind_width - 7 - 8 - 16
    table.add_column("column", overflow="ellipsis", no_wrap=True, max_width=name_width)
    table.add_column("kind", no_wrap=True)
    table.add_column("missing", justify="right", no_wrap=True, min_width=7)
    table.add_column("distinct", justify="right", no_wrap=True, min_width=8)
    table.add_column("summary", overflow="ellipsis", no_wrap=True, max_width=max(12, rest))
    for c in p.columns[:SHOWN_COLUMNS]:
        name = Text(c.name + (" *" if c.is_target else ""), style="bold" if c.is_target else "")
        missing = f"{c.missing_share:.1%}" if c.missing else "[dim]0[/]"
        table.add_row(name, Text(c.kind.value, style=_KIND_STYLE.get(c.kind.value, "")),
                      missing, f"{c.distinct:,}", escape(c.summary))
    caption = ["* target"] if p.target is not None else []
    if len(p.columns) > SHOWN_COLUMNS:
        caption.append(f"{len(p.columns) - SHOWN_COLUMNS} more columns in the HTML page")
    table.caption = "; ".join(caption) or None
    table.caption_justify = "left"
    console.print(table)
    if p.warnings:
        console.print(f"[bold]{len(p.warnings)} warning{'s' if len(p.warnings) > 1 else ''}[/]")
        for w in p.warnings:
            style = _SEVERITY_STYLE.get(w.severity.value, "")
            where = f" [bold]{escape(w.column)}[/]" if w.column is not None else ""
            console.print(f"  [{style}]{w.severity.value:<8}[/] {w.code}{where}: "
                          f"{escape(w.message)}", highlight=False)
    else:
        console.print("[green]No warnings.[/]")
    console.print(f"Wrote [bold]{escape(str(json_path))}[/] and "
                  f"[bold]{escape(str(html_path))}[/] (opens offline).", highlight=False,
                  soft_wrap=True)  # paths on one line, whole, so they can be copied
