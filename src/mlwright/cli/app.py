"""The ``mlwright`` Typer app: built here, every command group registered explicitly.

Each command module exposes ``register(app)``; none imports this module, so there is no
import cycle and ``import mlwright.cli.train`` works on its own. The order of ``COMMANDS``
is the order of ``mlwright --help`` (sub-apps such as ``models`` and ``keys`` are listed
after the plain commands).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, NoReturn

import typer

from mlwright import __version__
from mlwright.cli import (
    data,
    export,
    loop,
    models,
    monitor,
    predict,
    project,
    report,
    serve,
    train,
    ui,
)
from mlwright.cli._common import CliState, console, err_console, exit_now, run_guarded

__all__ = ["COMMANDS", "app", "build_app", "main", "run"]

COMMANDS = (project, data, loop, models, monitor, predict, export, report, serve, train, ui)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"mlwright {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                           help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress logs.")] = False,
) -> None:
    state = ctx.ensure_object(CliState)
    state.debug, state.verbose = debug, verbose
    from rich.logging import RichHandler

    # Warnings and errors always reach stderr (a server's "see the server log" must be
    # true without -v); -v adds progress, --debug everything.
    logger = logging.getLogger("mlwright")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(console=err_console, show_path=debug))
    logger.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)


def _hide_flag_types() -> None:
    """Typer labels every option with its type in ``--help``, flags too (``--force <bool>``),
    although a flag takes no value; show nothing there instead."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_mlwright", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._mlwright = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def build_app() -> typer.Typer:
    """A new ``mlwright`` app with every command group registered."""
    app = typer.Typer(
        name="mlwright",
        help="The whole machine-learning loop on tabular data: profile, contract, train, "
        "evaluate, register, serve, monitor, retrain.",
        no_args_is_help=True,
        rich_markup_mode="rich",
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    _hide_flag_types()
    app.callback()(_root)
    for module in COMMANDS:
        module.register(app)
    return app


app = build_app()


def main() -> None:
    """Run the app, turning mlwright errors into one clear paragraph."""
    run_guarded(app)


def _exit_code(code: object) -> int:
    """``SystemExit.code`` as a process status, as Python's own exit does (a message is
    printed and is status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err_console.print(str(code), markup=False, highlight=False)
    return 1


def run() -> NoReturn:
    """The ``mlwright`` command: :func:`main`, then :func:`exit_now` (no teardown). Only the
    process entry points call this; :func:`main` exits as usual."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    exit_now(code)
