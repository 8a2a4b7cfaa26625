"""The ``mlwright`` command line (Typer + Rich). Thin: parse, call the API, print.

Every :class:`~mlwright.exceptions.MlwrightError` becomes one paragraph on stderr and exit
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mlwright import __version__
from mlwright.exceptions import MlwrightError

app = typer.Typer(
    name="mlwright",
    help="The whole machine-learning loop on tabular data: profile, contract, train, "
    "evaluate, register, serve, monitor, retrain.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)
_state: dict[str, Any] = {"debug": False}

# Options shared by every command that reads a table.
TableOpt = Annotated[str | None, typer.Option("--table", help="Table name (SQL, DuckDB).")]
QueryOpt = Annotated[str | None, typer.Option("--query", help="SELECT statement (SQL, DuckDB).")]
SampleOpt = Annotated[
    int | None, typer.Option("--sample", min=1, help="Read a random sample of N rows.")
]
DelimiterOpt = Annotated[
    str | None, typer.Option("--delimiter", help="CSV delimiter (detected by default).")
]
EncodingOpt = Annotated[
    str | None, typer.Option("--encoding", help="CSV encoding (detected by default).")
]
_TARGET = typer.Option("--target", "-t", help="The column to predict.")
TargetOpt = Annotated[str, _TARGET]
OptionalTargetOpt = Annotated[str | None, _TARGET]
DataArg = Annotated[
    str, typer.Argument(help="A CSV/TSV, Parquet, JSON Lines or DuckDB file, or a SQLAlchemy URL.")
]


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"mlwright {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                           help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress logs.")] = False,
) -> None:
    _state["debug"] = debug
    from rich.logging import RichHandler

    # Warnings and errors always reach stderr (a server's "see the server log" must be
    # true without -v); -v adds progress, --debug everything.
    logger = logging.getLogger("mlwright")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(console=err_console, show_path=debug))
    logger.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)


def _load(data: str, *, table: str | None, query: str | None, sample: int | None,
          delimiter: str | None = None, encoding: str | None = None,
          columns: list[str] | None = None):  # type: ignore[no-untyped-def]
    from mlwright.data import load

    options = {k: v for k, v in {"delimiter": delimiter, "encoding": encoding}.items() if v}
    what = f"a random sample of {sample:,} rows of {data}" if sample else data
    with err_console.status(f"Reading {what}…"):
        return load(data, table=table, query=query, sample=sample, columns=columns, **options)


@app.command()
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
    df = _load(data, table=table, query=query, sample=sample, delimiter=delimiter,
               encoding=encoding, columns=[target])
    check_target(df, target)
    project = name or (Path(data).stem if "://" not in data else (table or "project"))
    config = ProjectConfig(
        name=project, data=DataConfig(source=data, target=target, table=table, query=query)
    )
    output.write_text(render_config(config), encoding="utf-8")
    console.print(f"Wrote [bold]{output}[/] for project [bold]{project}[/]; edit it, then run "
                  f"[bold]mlwright run {output}[/].")


def _print_error(message: str) -> None:
    from rich.markup import escape

    # One paragraph: drivers and parsers put line breaks in their messages; brackets such as
    # "mlwright[postgres]" are text, not Rich markup.
    paragraph = " ".join(message.split())
    err_console.print(f"[bold red]Error:[/] {escape(paragraph)}", highlight=False,
                      soft_wrap=True)


def main() -> None:
    """Entry point: run the app, turning mlwright errors into one clear paragraph."""
    try:
        app()
    except MlwrightError as exc:
        if _state["debug"]:
            raise
        _print_error(str(exc))
        sys.exit(exc.exit_code)
    except OSError as exc:  # disk full, permission denied on an output path, ...
        if _state["debug"]:
            raise
        _print_error(f"{exc}. Check the path and its permissions (--debug shows where it "
                     f"happened).")
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)


# Commands that live with their stage, registered on import (keeps this module thin).
from mlwright import (  # noqa: E402, F401
    _cli_data,
    _cli_loop,
    _cli_models,
    _cli_monitor,
    _cli_report,
    _cli_serve,
    _cli_train,
)
