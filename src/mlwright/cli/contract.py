"""Rich output of the ``contract``, ``validate`` and ``fingerprint`` commands.

Kept apart from ``data.py`` so that the commands there stay a few lines each; this is
still CLI code, the only place allowed to print.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mlwright.cli._common import console

if TYPE_CHECKING:
    from mlwright.data.contract import ColumnSpec, Contract, ValidationResult

__all__ = ["print_contract", "print_validation"]

#: Violations listed one by one; the rest are only counted.
SHOWN_VIOLATIONS = 50


def _allowed(spec: ColumnSpec) -> str:
    if spec.categories is not None:
        shown = escape(", ".join(str(c) for c in spec.categories[:6]))
        more = f" (+{len(spec.categories) - 6})" if len(spec.categories) > 6 else ""
        return f"{shown}{more} [dim]unknown: {spec.on_unknown}[/]"
    if spec.min is not None:
        return f"{spec.min:g} … {spec.max:g} [dim]outside: {spec.on_out_of_range}[/]"
    if spec.earliest is not None:
        return f"{spec.earliest} … {spec.latest} [dim]outside: {spec.on_out_of_range}[/]"
    return "[dim]any[/]"


def print_contract(contract: Contract, path: Path) -> None:
    target = contract.target
    title = f"{contract.n_rows:,} rows, {len(contract.columns)} columns"
    if target is not None:
        classes = f", classes {', '.join(map(str, target.classes))}" if target.classes else ""
        title += f"; target [bold]{escape(target.name)}[/] ({target.task}{escape(classes)})"
    table = Table(title=title, title_justify="left")
    for header in ("column", "kind", "type", "missing", "required", "allowed"):
        table.add_column(header, overflow="fold")
    for spec in contract.columns:
        missing = f"{spec.stats.missing_rate:.1%}" if spec.nullable else "never"
        bold = target is not None and spec.name == target.name
        table.add_row(Text(spec.name, style="bold" if bold else ""), spec.kind.value,
                      spec.dtype.value, missing, "yes" if spec.required else "no",
                      _allowed(spec))
    console.print(table)
    where = escape(str(path))
    console.print(f"Wrote [bold]{where}[/] (data {contract.fingerprint[:19]}…). Check new data "
                  f"with [bold]mlwright validate DATA --contract {where}[/].", highlight=False)


def print_validation(result: ValidationResult, contract_path: Path) -> None:
    if len(result) == 0:
        console.print(f"[green]OK[/]: {result.n_rows:,} rows match the contract "
                      f"{escape(str(contract_path))}.", highlight=False)
        return
    frame = result.to_frame()
    table = Table(title=f"Violations (first {min(len(frame), SHOWN_VIOLATIONS)} of "
                  f"{len(frame):,})", title_justify="left")
    for header in ("row", "column", "rule", "value", "expected"):
        table.add_column(header, overflow="fold")
    for v in result.to_frame().head(SHOWN_VIOLATIONS).itertuples(index=False):
        style = "red" if v.severity == "error" else "yellow"
        value = "" if v.row is None and v.value is None else repr(v.value)
        table.add_row("" if v.row is None else str(v.row), Text(v.column),
                      Text(v.rule, style=style), Text(value[:60]), Text(v.expected[:80]))
    console.print(table)
    counts = Table(title="Per column", title_justify="left")
    for header in ("column", "rule", "severity", "count", "example"):
        counts.add_column(header, overflow="fold")
    for row in result.summary().itertuples(index=False):
        style = "red" if row.severity == "error" else "yellow"
        example = "" if row.example is None else repr(row.example)[:60]
        counts.add_row(Text(row.column), row.rule, Text(row.severity, style=style),
                       f"{row.count:,}", Text(example))
    console.print(counts)
    n_rows = len(result.rows_with_errors())
    verdict = "[red]FAILED[/]" if not result.ok else "[yellow]passed with warnings[/]"
    console.print(f"{verdict}: {_count(result.n_errors, 'error')} in {n_rows:,} of "
                  f"{result.n_rows:,} rows, {_count(result.n_warnings, 'warning')} "
                  f"(contract {escape(str(contract_path))}).", highlight=False)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
