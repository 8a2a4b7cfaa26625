"""The ``mlwright`` command line (Typer + Rich). Thin: parse, call the API, print.

``app.py`` builds the app and registers each command module (one per command group) in
order; ``_common.py`` holds the consoles, shared options and error handling. Every
:class:`~mlwright.exceptions.MlwrightError` becomes one paragraph on stderr and its exit
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from mlwright.cli.app import app, main, run

__all__ = ["app", "main", "run"]
