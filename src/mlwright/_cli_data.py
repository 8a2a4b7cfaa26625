"""Data-layer commands: profile, contract, validate, fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli import (
    DataArg,
    DelimiterOpt,
    EncodingOpt,
    QueryOpt,
    SampleOpt,
    TableOpt,
    app,
)


@app.command()
def profile(
    data: DataArg,
    target: Annotated[str | None, typer.Option("--target", "-t", help="The column to predict.")
                      ] = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    sample: SampleOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for profile.json and "
                                      "profile.html.")] = Path("reports"),
) -> None:
    """Profile DATA: column kinds, missingness, distributions, and warnings (leakage, ids, PII)."""
    raise typer.Exit(3)  # filled in by the profile module


@app.command()
def contract(
    data: DataArg,
    target: Annotated[str | None, typer.Option("--target", "-t", help="The column to predict.")
                      ] = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    sample: SampleOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the contract.")
                      ] = Path("contract.json"),
) -> None:
    """Learn the data contract of DATA (schema + reference statistics) and save it as JSON."""
    raise typer.Exit(3)  # filled in by the contract module


@app.command()
def validate(
    data: DataArg,
    contract_path: Annotated[Path, typer.Option("--contract", "-c", help="A contract JSON file.")],
    table: TableOpt = None,
    query: QueryOpt = None,
    sample: SampleOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Check DATA against a contract; print violations and exit 1 when there are any."""
    raise typer.Exit(3)  # filled in by the contract module


@app.command()
def fingerprint(
    data: DataArg,
    table: TableOpt = None,
    query: QueryOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Print the content fingerprint of DATA (stable across formats and row order)."""
    raise typer.Exit(3)  # filled in by the fingerprint module
