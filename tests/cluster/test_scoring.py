"""Issue 18, point 4: a Parquet dataset scored on two Dask worker processes, partition by
partition, equals the in-process scorer's output (`mlwright predict` without --cluster):
same rows, keys, predictions and probabilities; a partition that breaks the contract stops
the run naming DATA's rows, and leaves nothing behind. Real data: telco_churn."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlwright as mw
from mlwright.cluster import score_dataset
from mlwright.exceptions import ContractError
from mlwright.serve.batchfile import score_file
from mlwright.serve.runtime import load_source

pytestmark = pytest.mark.slow  # a Dask cluster of two processes


@pytest.fixture(scope="module")
def run(telco_1000, tmp_path_factory) -> Path:
    result = mw.train(telco_1000.head(600), "churn", n_trials=3,
                      families=["lightgbm", "linear"], seed=0, n_jobs=1)
    return result.save(tmp_path_factory.mktemp("scoring") / "run")


@pytest.fixture(scope="module")
def dataset(telco_1000, tmp_path_factory) -> Path:
    """Rows the model did not see, as a dataset of three files with row groups of 70
    rows; file names that sort differently as text and as numbers (part2, part10)."""
    rows = telco_1000.iloc[600:].drop(columns="churn").reset_index(drop=True)
    rows.insert(0, "customer", [f"c{i:04d}" for i in range(len(rows))])
    folder = tmp_path_factory.mktemp("scoring") / "rows"
    folder.mkdir()
    for name, part in zip(("part10", "part2", "part3"), (rows.iloc[:150], rows.iloc[150:310],
                                                          rows.iloc[310:]), strict=True):
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       folder / f"{name}.parquet", row_group_size=70)
    return folder


def _parts(folder: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("part-*.parquet"))],
                     ignore_index=True)


@pytest.mark.parametrize("id_column", [None, "customer"])
def test_dask_scoring_equals_in_process_scoring(dask_client, run, dataset, tmp_path,
                                                id_column):
    loaded = load_source(str(run))
    expected_file = tmp_path / "expected.parquet"
    score_file(loaded, str(dataset), expected_file, id_column=id_column, chunk_rows=1000)
    out = tmp_path / "scored"
    summary = score_dataset(loaded, str(dataset), out, dask_client, id_column=id_column,
                            chunk_rows=100)
    got = _parts(out)
    expected = pd.read_parquet(expected_file)
    assert summary.rows == len(expected) == 400
    # Whole row groups of 70 up to 100+ rows a piece: files of 150, 160, 90 rows give
    # pieces of 140, 10 | 140, 20 | 90.
    assert summary.chunks == 5
    pd.testing.assert_frame_equal(got, expected)
    assert list(got.columns[:2]) == [id_column or "row", "prediction"]


def test_a_partition_that_breaks_the_contract_stops_the_run(dask_client, run, dataset,
                                                            tmp_path):
    loaded = load_source(str(run))
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in dataset.glob("*.parquet"):
        frame = pd.read_parquet(p)
        # A number column stored as text in every file (text that reads as a number is
        # a number), where DATA's row 157 (part10's 150 rows, then part2's row 7) is not.
        frame["monthly_charges"] = frame["monthly_charges"].map(repr)
        if p.name == "part2.parquet":
            frame.loc[7, "monthly_charges"] = "not a number"
        frame.to_parquet(bad / p.name, index=False)
    with pytest.raises(ContractError) as in_process:
        score_file(loaded, str(bad), tmp_path / "x.parquet")
    out = tmp_path / "scored"
    with pytest.raises(ContractError) as on_cluster:
        score_dataset(loaded, str(bad), out, dask_client, chunk_rows=100)
    assert "rows 157" in str(in_process.value)
    assert "rows 157" in str(on_cluster.value)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scored")]


def test_predict_cli_with_cluster_writes_a_dataset_folder(dask_client, run, dataset, tmp_path,
                                                          monkeypatch, capsys):
    from mlwright.cli import main

    out = tmp_path / "scored"
    args = ["mlwright", "predict", str(run), str(dataset), "-o", str(out), "--id", "customer",
            "--cluster", dask_client.scheduler.address]
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", args)
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    assert "Scored 400 rows" in " ".join(capsys.readouterr().out.split())
    assert _parts(out)["customer"].tolist() == [f"c{i:04d}" for i in range(400)]
    monkeypatch.setattr(sys, "argv", [*args[:5], str(tmp_path / "scored.csv"), *args[6:]])
    with pytest.raises(SystemExit) as refused:
        main()
    assert refused.value.code == 2
    assert "folder of Parquet parts" in " ".join(capsys.readouterr().err.split())
