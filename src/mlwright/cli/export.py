"""``mlwright export MODEL --format onnx -o model.onnx``: the whole pipeline as one file.

The work is :func:`mlwright.export.core.export_onnx`: the graph, the parity check on the run
folder's held-back rows and probe rows (nothing is written unless it holds), the file, and
for a registered version the MLflow log beside the pyfunc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli._common import console, err_console
from mlwright.cli.serve import ConfigOpt, _project, _store
from mlwright.exceptions import ConfigError

__all__ = ["export", "register"]

FORMATS = ("onnx",)


def export(
    model: Annotated[str, typer.Argument(
        help="NAME@alias or NAME/VERSION (the registry), or a run folder written by "
        "'mlwright train'.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="The file to write, e.g. model.onnx (written only once parity "
        "with the Python model holds).")],
    format: Annotated[str, typer.Option(
        "--format", "-f", help="The format: onnx.")] = "onnx",
    log: Annotated[bool, typer.Option(
        "--log/--no-log", help="Log the exported model to the version's MLflow run (a "
        "registry reference only).")] = True,
    config: ConfigOpt = None,
) -> None:
    """Export a model with its preprocessing to one file (ONNX), checked against Python."""
    from mlwright.export.core import export_onnx
    from mlwright.serve.runtime import is_registry_ref, load_source

    if format.lower() not in FORMATS:
        raise ConfigError(f"Cannot export to {format!r}: expected --format "
                          f"{' or '.join(FORMATS)}.")
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"Cannot write an ONNX model to {str(out)!r}: expected a file "
                          f"ending in .onnx.")
    uri = _store(_project(config)).resolved_tracking_uri()
    with err_console.status(f"Loading {model}…"):
        loaded = load_source(model, tracking_uri=uri)
    registry = None
    if log and is_registry_ref(model):
        from mlwright.registry import Registry

        registry = Registry(uri)
    with err_console.status("Converting and checking parity…"):
        exported = export_onnx(loaded, out, registry=registry)
    console.print(f"Exported [bold]{loaded.name}[/] (version {loaded.version}) to {out} "
                  f"({len(exported.data) / 1e6:,.2f} MB, {exported.seconds:.1f} s). Parity "
                  f"with the Python model: {exported.parity.summary()}."
                  + (f" Logged to MLflow at {exported.logged}." if exported.logged else ""),
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(export)
