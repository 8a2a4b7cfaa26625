"""Data-layer commands: profile, contract, validate, fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli._common import (
    DataArg,
    DelimiterOpt,
    EncodingOpt,
    OptionalTargetOpt,
    QueryOpt,
    SampleOpt,
    SampleRowsOpt,
    TableOpt,
    console,
    err_console,
    load_table,
)


def profile(
    data: DataArg,
    target: OptionalTargetOpt = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    sample: SampleOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for profile.json and "
                                      "profile.html.")] = Path("reports"),
    sample_rows: SampleRowsOpt = None,
) -> None:
    """Profile DATA: column kinds, missingness, distributions, and warnings (leakage, ids, PII)."""
    from mlwright.cli.profile import print_profile, run_profile

    print_profile(*run_profile(data, target=target, table=table, query=query, sample=sample,
                               delimiter=delimiter, encoding=encoding, out=out,
                               sample_rows=sample_rows))


def contract(
    data: DataArg,
    target: OptionalTargetOpt = None,
    table: TableOpt = None,
    query: QueryOpt = None,
    sample: SampleOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the contract.")
                      ] = Path("contract.json"),
    sample_rows: SampleRowsOpt = None,
) -> None:
    """Learn the data contract of DATA (schema + reference statistics) and save it as JSON."""
    from mlwright.cli.contract import print_contract
    from mlwright.data.contract import learn_contract
    from mlwright.data.dataset import larger_than_memory

    if not (table or query or sample) and (sample_rows or larger_than_memory(data)):
        from mlwright.api import LARGE_SAMPLE_ROWS
        from mlwright.data.contract.outofcore import learn_contract_parquet
        from mlwright.data.dataset import open_parquet_dataset, sample_of

        dataset = open_parquet_dataset(data, target=target)
        with err_console.status(f"Contract of {dataset.n_rows:,} rows out of core…"):
            rows, fingerprint = sample_of(dataset, sample_rows or LARGE_SAMPLE_ROWS)
            learned = learn_contract_parquet(dataset, rows, target, fingerprint=fingerprint)
        print_contract(learned, learned.save(output))
        return
    df = load_table(data, table=table, query=query, sample=sample, delimiter=delimiter,
               encoding=encoding)
    source = data if not (table or query) else f"{data} ({table or query})"
    learned = learn_contract(df, target, source=source)
    print_contract(learned, learned.save(output))


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
    from mlwright.cli.contract import print_validation
    from mlwright.data.contract import Contract
    from mlwright.data.contract import validate as check

    expected = Contract.load(contract_path)  # a bad contract fails before any data is read
    df = load_table(data, table=table, query=query, sample=sample, delimiter=delimiter,
               encoding=encoding)
    result = check(df, expected)
    print_validation(result, contract_path)
    if not result.ok:
        raise typer.Exit(1)  # warnings alone pass: only errors break the contract


def fingerprint(
    data: DataArg,
    table: TableOpt = None,
    query: QueryOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Print the content fingerprint of DATA (stable across formats and row order)."""
    from mlwright.data.fingerprint import fingerprint as content_hash

    df = load_table(data, table=table, query=query, sample=None, delimiter=delimiter,
               encoding=encoding)
    console.print(content_hash(df), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    for command in (profile, contract, validate, fingerprint):
        app.command()(command)
