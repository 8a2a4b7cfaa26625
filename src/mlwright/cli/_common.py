"""What every command module shares: the consoles, the options of commands that read a
table, the table loader, the per-invocation state, and the error handling of ``main``.

No module-level mutable state: ``--debug`` and ``--verbose`` live in a :class:`CliState`
that ``main`` creates per invocation and hands to Typer as the context object.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from mlwright.exceptions import MlwrightError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CliState", "ClusterOpt", "DataArg", "DelimiterOpt", "EncodingOpt",
           "OptionalTargetOpt", "QueryOpt", "SampleOpt", "SampleRowsOpt", "StoreOpt", "TableOpt",
           "TargetOpt",
           "cluster_address", "console", "err_console", "load_table", "print_error",
           "run_guarded"]

console = Console()
err_console = Console(stderr=True)

# The store every command that registers, serves or reads the log takes (mlwright.toml's
# [store] otherwise).
StoreOpt = Annotated[str | None, typer.Option(
    "--store", help="The project's store: a folder (default .mlwright, or mlwright.toml's "
    "\\[store]) or a database URL such as postgresql://user@host/mlwright for the registry "
    "and the project database (prediction log, audit, keys).")]

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
SampleRowsOpt = Annotated[int | None, typer.Option(
    "--sample-rows", min=100, help="Out of core, for a Parquet dataset (a file, a folder or a "
    "glob): every count, range and quantile over all rows with DuckDB, kinds and charts from "
    "a seeded sample of N rows (default: so, with 100,000 rows, when the dataset is larger "
    "than a quarter of this machine's memory).")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="Dask scheduler address, e.g. tcp://HOST:8786: the work runs on its "
    "workers (default: mlwright.toml's cluster, else here).")]
TargetOpt = Annotated[str, _TARGET]
OptionalTargetOpt = Annotated[str | None, _TARGET]
DataArg = Annotated[
    str, typer.Argument(help="A CSV/TSV, Parquet, JSON Lines or DuckDB file, or a SQLAlchemy URL.")
]


@dataclass
class CliState:
    """One invocation's global options (``ctx.obj``), set by the root callback."""

    debug: bool = False
    verbose: bool = False


def load_table(data: str, *, table: str | None, query: str | None, sample: int | None,
               delimiter: str | None = None, encoding: str | None = None,
               columns: list[str] | None = None) -> pd.DataFrame:
    """Read DATA with a status line on stderr while it loads."""
    from mlwright.data import load

    given = {"delimiter": delimiter, "encoding": encoding}
    options: dict[str, Any] = {k: v for k, v in given.items() if v}
    what = f"a random sample of {sample:,} rows of {data}" if sample else data
    with err_console.status(f"Reading {what}…"):
        return load(data, table=table, query=query, sample=sample, columns=columns, **options)


def cluster_address(option: str | None, project: Any = None) -> str | None:
    """--cluster, else the project's ``cluster =`` (``project``: a loaded mlwright.toml;
    None reads ./mlwright.toml when it exists), else None: run here."""
    if option is not None:
        return option
    if project is None:
        from pathlib import Path

        from mlwright.config import CONFIG_FILE, load_config

        if not Path(CONFIG_FILE).exists():
            return None
        project = load_config(CONFIG_FILE)
    return project.cluster


def print_error(message: str) -> None:
    from rich.markup import escape

    # One paragraph: drivers and parsers put line breaks in their messages; brackets such as
    # "mlwright[postgres]" are text, not Rich markup.
    paragraph = " ".join(message.split())
    err_console.print(f"[bold red]Error:[/] {escape(paragraph)}", highlight=False,
                      soft_wrap=True)


def run_guarded(app: typer.Typer) -> None:
    """Run ``app``, turning mlwright errors into one clear paragraph (``--debug``: the
    traceback instead)."""
    state = CliState()
    try:
        app(obj=state)
    except MlwrightError as exc:
        if state.debug:
            raise
        print_error(str(exc))
        sys.exit(exc.exit_code)
    except OSError as exc:  # disk full, permission denied on an output path, ...
        if state.debug:
            raise
        print_error(f"{exc}. Check the path and its permissions (--debug shows where it "
                    f"happened).")
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)


def exit_now(code: int) -> NoReturn:
    """End the process without Python's teardown, which frees every module and object one
    by one with nothing left to do (0.5 s after importing the stack, 1-1.3 s after a
    training: a fifth of ``--budget 5``). What an exit must still do is done first: other
    non-daemon threads are waited for, the atexit handlers run (logging, loky's workers,
    temporary folders) and the streams are flushed. Under a profiler or a debugger (``python
    -m cProfile -m mlwright``), which writes its results after the program returns, the
    exit is Python's own."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    import atexit
    import contextlib
    import os
    import threading

    # Python's own first steps of an exit, in its order: threading's exit hooks (which stop
    # idle ThreadPoolExecutor workers, else joining them waits forever), the join of every
    # non-daemon thread, then the atexit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing reaches it
            stream.flush()
    os._exit(code)
