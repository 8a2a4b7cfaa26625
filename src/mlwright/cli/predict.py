"""``mlwright predict MODEL DATA -o OUT``: batch scoring, streamed in chunks.

The work is :func:`mlwright.serve.batchfile.score_file`; this module reads the options,
shows a progress bar with rows/s on stderr and prints the contract warnings' summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlwright.cli._common import (
    ClusterOpt,
    DataArg,
    DelimiterOpt,
    EncodingOpt,
    QueryOpt,
    TableOpt,
    cluster_address,
    console,
    err_console,
)
from mlwright.cli.serve import ConfigOpt, DatabaseOpt, StoreOpt, _project, _store
from mlwright.exceptions import ConfigError

__all__ = ["predict", "register"]


def predict(
    model: Annotated[str, typer.Argument(
        help="NAME@alias or NAME/VERSION (the registry), a run folder written by "
        "'mlwright train', or an .onnx file written by 'mlwright export' (run by "
        "onnxruntime).")],
    data: DataArg,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the predictions: a .parquet or .csv file "
        "(written whole at the end: a failed run leaves nothing).")],
    id_column: Annotated[str | None, typer.Option(
        "--id", help="The column keying each output row (default: 'row', the 0-based row "
        "number in DATA).")] = None,
    chunk_rows: Annotated[int, typer.Option(
        "--chunk-rows", min=1, help="Rows read, checked and predicted at a time (memory "
        "holds one chunk).")] = 100_000,
    log: Annotated[bool, typer.Option(
        "--log", help="Also write the rows to the prediction log, for 'mlwright monitor'.")
                   ] = False,
    table: TableOpt = None,
    query: QueryOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
    cluster: ClusterOpt = None,
    store_option: StoreOpt = None,
) -> None:
    """Score DATA with a model into OUT, in chunks, each checked against the contract.

    With --cluster, DATA (a Parquet file or dataset folder) is scored on the Dask
    cluster's workers, partition by partition, into OUT: a folder of Parquet parts."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from mlwright.serve.batchfile import OUTPUT_FORMATS, score_file
    from mlwright.serve.runtime import load_source

    project = _project(config)
    address = cluster_address(cluster, project) if project is not None else cluster
    if address is not None:
        _predict_on_cluster(model, data, out, address, project, id_column=id_column,
                            chunk_rows=chunk_rows, log=log, store_option=store_option)
        return
    if out.suffix.lower() not in OUTPUT_FORMATS:  # before loading anything
        raise ConfigError(f"Cannot write predictions to {str(out)!r}: expected a file ending "
                          f"in {' or '.join(OUTPUT_FORMATS)}.")
    store = _store(project, store_option)
    with err_console.status(f"Loading {model}…"):
        loaded = load_source(model, tracking_uri=store.resolved_tracking_uri())
    options: dict[str, Any] = {k: v for k, v in (("delimiter", delimiter),
                                                 ("encoding", encoding)) if v}
    progress = Progress(TextColumn("[bold]Scoring[/]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[speed]} rows/s"), TimeElapsedColumn(),
                        console=err_console, transient=True)
    task = progress.add_task("score", total=None, speed="-")

    def on_chunk(done: int, total: int | None) -> None:
        elapsed = progress.tasks[0].elapsed or 0.0
        progress.update(task, completed=done, total=total,
                        speed=f"{done / elapsed:,.0f}" if elapsed > 0 else "-")

    with progress:
        summary = score_file(loaded, data, out, id_column=id_column, chunk_rows=chunk_rows,
                             log_database=(database or store.database_url()) if log else None,
                             on_chunk=on_chunk, table=table, query=query, **options)
    console.print(f"Scored [bold]{summary.rows:,}[/] rows with {loaded.name} "
                  f"(version {loaded.version}) in {summary.seconds:.1f} s "
                  f"({summary.rows_per_s:,.0f} rows/s) into {out}"
                  + (f"; {summary.logged:,} rows logged" if log else "") + ".",
                  highlight=False, soft_wrap=True)
    _print_warnings(summary)


def _print_warnings(summary: Any) -> None:
    if summary.warnings:
        from rich.table import Table

        shown = Table("column", "rule", "rows", "example", title="Contract warnings")
        for (column, rule), count in summary.warnings.most_common():
            shown.add_row(column, rule, f"{count:,}", summary.examples[(column, rule)])
        console.print(shown)


def _predict_on_cluster(model: str, data: str, out: Path, address: str, project: Any, *,
                        id_column: str | None, chunk_rows: int, log: bool,
                        store_option: str | None) -> None:
    from mlwright.cluster import connect, score_dataset
    from mlwright.serve.runtime import load_source

    if model.lower().endswith(".onnx"):
        raise ConfigError(f"{model!r} is an ONNX file, which is scored without --cluster (the "
                          f"workers load registered models or run folders).")
    if log:
        raise ConfigError("--log is not available with --cluster yet: the workers do not "
                          "write the prediction log. Score without --cluster to log the rows.")
    if out.suffix.lower() == ".csv":
        raise ConfigError(f"With --cluster, OUT is a folder of Parquet parts, not a CSV file: "
                          f"give a folder name instead of {str(out)!r}.")
    store = _store(project, store_option)
    with err_console.status(f"Loading {model}…"):
        loaded = load_source(model, tracking_uri=store.resolved_tracking_uri())
    with connect(address) as client, err_console.status(f"Scoring on {address}…"):
        summary = score_dataset(loaded, data, out, client, id_column=id_column,
                                chunk_rows=chunk_rows)
    console.print(f"Scored [bold]{summary.rows:,}[/] rows with {loaded.name} "
                  f"(version {loaded.version}) on {address} in {summary.seconds:.1f} s "
                  f"({summary.rows_per_s:,.0f} rows/s, {summary.chunks:,} partitions) into "
                  f"{out}/.", highlight=False, soft_wrap=True)
    _print_warnings(summary)


def register(app: typer.Typer) -> None:
    app.command()(predict)
