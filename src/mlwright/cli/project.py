"""``mlwright init``: write a commented mlwright.toml for a table and its target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli._common import (
    DataArg,
    DelimiterOpt,
    EncodingOpt,
    QueryOpt,
    SampleOpt,
    TableOpt,
    TargetOpt,
    console,
    load_table,
)

__all__ = ["init", "register"]


def init(
    data: DataArg,
    target: TargetOpt,
    name: Annotated[str | None, typer.Option(help="Project name (default: the file's name).")
                    ] = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    sample: SampleOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write.")] = Path(
        "mlwright.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented [bold]mlwright.toml[/] for DATA and TARGET (checked against the data)."""
    from mlwright.config import DataConfig, ProjectConfig, render_config
    from mlwright.data.target import check_target
    from mlwright.exceptions import ConfigError

    if output.exists() and not force:
        raise ConfigError(f"{str(output)!r} already exists; pass --force to overwrite it.")
    # Only the target column is read (cheap even on big files), and all of it unless --sample:
    # a sample could miss a rare class and call the target single-valued.
    df = load_table(data, table=table, query=query, sample=sample, delimiter=delimiter,
                    encoding=encoding, columns=[target])
    check_target(df, target)
    project = name or (Path(data).stem if "://" not in data else (table or "project"))
    config = ProjectConfig(
        name=project, data=DataConfig(source=data, target=target, table=table, query=query)
    )
    output.write_text(render_config(config), encoding="utf-8")
    console.print(f"Wrote [bold]{output}[/] for project [bold]{project}[/]; edit it, then run "
                  f"[bold]mlwright run {output}[/].")


def register(app: typer.Typer) -> None:
    app.command()(init)
