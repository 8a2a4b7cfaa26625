"""Training on a Parquet dataset out of core: the contract and profile over every row
(DuckDB) equal the in-memory ones, the lightgbm.dask refit on a real LocalCluster ships an
ordinary model, and bad datasets are refused naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwright.data.contract import learn_contract
from mlwright.data.contract.outofcore import learn_contract_parquet
from mlwright.data.dataset import open_parquet_dataset, row_draw
from mlwright.data.profile.build import profile
from mlwright.data.profile.outofcore import profile_parquet
from mlwright.data.sources import load
from mlwright.exceptions import ColumnNotFoundError, DataSourceError


@pytest.fixture(scope="module")
def telco_folder(tmp_path_factory: pytest.TempPathFactory, telco_1000: pd.DataFrame) -> Path:
    folder = tmp_path_factory.mktemp("telco")
    frame = telco_1000.copy()
    frame.loc[::7, "total_charges"] = np.nan  # missing values to count
    for i in range(3):
        part = frame.iloc[i * 334:(i + 1) * 334]
        part.to_parquet(folder / f"part-{i}.parquet", row_group_size=100)
    return folder


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 relative (DuckDB and numpy sum in different orders)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12))
    return bool(a == b)


def test_contract_and_profile_out_of_core_equal_in_memory(telco_folder: Path) -> None:
    dataset = open_parquet_dataset(telco_folder, target="churn", piece_rows=150)
    assert dataset.n_rows == 1000 and len(dataset.files) == 3 and len(dataset.pieces) == 6
    kept, fingerprint = dataset.scan(0, {"sample": (0.0, 0.4), "rest": (0.4, 1.0)})
    assert len(kept["sample"]) + len(kept["rest"]) == 1000
    assert not set(kept["sample"].index) & set(kept["rest"].index)
    full = load(str(telco_folder))
    memory = learn_contract(full, "churn")
    outside = learn_contract_parquet(dataset, kept["sample"], "churn", fingerprint=fingerprint)
    assert outside.fingerprint == memory.fingerprint  # the whole table's, piece by piece
    assert _close(outside.content(), memory.content())
    column = outside.column("total_charges")
    missing = int(full["total_charges"].isna().sum())
    assert missing >= 143 and column.stats.missing == missing and column.nullable
    assert outside.column("contract").categories == memory.column("contract").categories

    p_mem, p_out = profile(full, "churn"), profile_parquet(dataset, kept["sample"], "churn")
    assert (p_out.n_rows, p_out.missing_cells) == (p_mem.n_rows, p_mem.missing_cells)
    assert p_out.n_rows == 1000 and p_out.missing_cells >= missing
    for a, b in zip(p_mem.columns, p_out.columns, strict=True):
        assert (a.name, a.count, a.missing, a.distinct) == (b.name, b.count, b.missing, b.distinct)
        assert _close(a.stats, b.stats), a.name
        # Ties among the most common values may be listed in another order.
        assert sorted(v["count"] for v in a.top_values) == sorted(v["count"] for v in b.top_values)
        if a.distinct <= 10:  # the same labels (0, not 0.0), the same counts
            assert {repr(v["value"]): v["count"] for v in a.top_values} == \
                {repr(v["value"]): v["count"] for v in b.top_values}
    assert p_out.target_distribution == p_mem.target_distribution
    assert p_out.meta["sample_rows"] == len(kept["sample"])


def test_row_draw_is_the_same_whatever_reads_it() -> None:
    whole = row_draw(0, 1000, seed=3)
    assert np.array_equal(whole[400:700], row_draw(400, 300, seed=3))
    assert not np.array_equal(whole, row_draw(0, 1000, seed=4))
    assert whole.min() >= 0.0 and whole.max() < 1.0 and abs(whole.mean() - 0.5) < 0.05


def test_bad_datasets_are_refused_naming_the_file(tmp_path: Path,
                                                  telco_1000: pd.DataFrame) -> None:
    with pytest.raises(DataSourceError, match="No Parquet file"):
        open_parquet_dataset(tmp_path / "nothing-*.parquet")
    telco_1000.iloc[:100].to_parquet(tmp_path / "a.parquet")
    telco_1000.iloc[100:200].drop(columns=["churn"]).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(ColumnNotFoundError, match=r"b\.parquet: .*'churn'"):
        open_parquet_dataset(tmp_path, target="churn")
    with pytest.raises(DataSourceError, match=r"b\.parquet does not have the columns of .*"
                                              r"a\.parquet: missing \['churn'\]"):
        open_parquet_dataset(str(tmp_path / "*.parquet"))
    (tmp_path / "b.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataSourceError, match=r"b\.parquet"):
        open_parquet_dataset(tmp_path)


@pytest.mark.slow
def test_train_large_refits_on_dask_and_ships_an_ordinary_model(
        telco_folder: Path, dask_client: Any, tmp_path: Path) -> None:
    from mlwright.api import train_large
    from mlwright.registry.model import LoadedModel
    from mlwright.search.predictor import compile_predictor

    messages: list[str] = []
    result = train_large(str(telco_folder / "*.parquet"), "churn", sample_rows=300,
                         holdout_rows=200, n_trials=2, cluster=dask_client,
                         progress=messages.append)
    large = result.params["large"]
    assert large["rows"] == 1000 and large["family"] == "lightgbm"
    assert large["refit_rows"] + large["holdout_rows"] == 1000  # every row but the holdout
    assert large["refit_rows"] > 2 * large["sample_rows"]
    assert 0.7 < large["holdout_roc_auc"] <= 1.0
    assert any("lightgbm.dask" in m for m in messages)
    assert result.contract is not None and result.contract.n_rows == 1000
    member = result.model.members[0]
    assert type(member["estimator"]).__name__ == "LGBMClassifier"  # a local model
    folder = result.save(tmp_path / "run")
    loaded = LoadedModel.from_folder(folder)
    rows = load(str(telco_folder)).drop(columns=["churn"])
    predictor = compile_predictor(loaded.model, loaded.contract)
    _, proba = predictor.predict_frame(rows)
    assert proba is not None
    np.testing.assert_allclose(proba, result.model.predict_proba(rows), rtol=1e-9)

    # The same data on the same cluster: each worker gets the same rows in the same order
    # and lightgbm.dask's machines the same ranks, so the fit repeats (decision 0028).
    again = train_large(str(telco_folder), "churn", sample_rows=300, holdout_rows=200,
                        n_trials=2, cluster=dask_client)
    assert {**again.params["large"], "source": None} == {**large, "source": None}
    np.testing.assert_array_equal(again.model.predict_proba(rows),
                                  result.model.predict_proba(rows))


@pytest.mark.slow
def test_the_train_command_trains_out_of_core_and_predict_reads_the_run(
        telco_folder: Path, dask_client: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import re
    import sys

    from mlwright.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> str:
        monkeypatch.setattr(sys, "argv", ["mlwright", *argv])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr()
        return capsys.readouterr().out

    out = run("train", str(telco_folder), "--target", "churn", "--sample-rows", "300",
              "--holdout-rows", "200", "--trials", "2", "--no-register",
              "--cluster", dask_client.scheduler.address, "-o", str(tmp_path / "run"))
    assert "Contract over all 1,000 rows (DuckDB)" in out
    assert "out of core" in out and "rows it never saw" in out
    # The report's test table is the holdout: the shipped model on rows it never saw.
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["honesty"][0]["n_test"] == int(re.search(
        r"on ([\d,]+) rows it never saw", " ".join(out.split()))[1].replace(",", ""))
    run("predict", str(tmp_path / "run"), str(telco_folder / "part-0.parquet"),
        "-o", str(tmp_path / "scored.csv"))
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == 334 and scored["proba_Yes"].between(0, 1).all()


def test_the_contract_and_profile_commands_work_out_of_core(
        telco_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import sys

    from mlwright.cli import main
    from mlwright.data.contract import Contract

    def run(*argv: str) -> None:
        monkeypatch.setattr(sys, "argv", ["mlwright", *argv])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr()

    glob = str(telco_folder / "part-*.parquet")
    run("contract", glob, "--target", "churn", "--sample-rows", "300",
        "-o", str(tmp_path / "contract.json"))
    learned = Contract.load(tmp_path / "contract.json")
    assert _close(learned.content(), learn_contract(load(str(telco_folder)), "churn").content())
    run("profile", glob, "--target", "churn", "--sample-rows", "300", "-o", str(tmp_path))
    written = json.loads((tmp_path / "profile.json").read_text())
    assert written["n_rows"] == 1000 and written["meta"]["sample_rows"] < 1000
    assert (tmp_path / "profile.html").exists()


@pytest.mark.slow
def test_a_regression_target_refits_out_of_core(telco_folder: Path, dask_client: Any) -> None:
    from mlwright.api import train_large

    result = train_large(str(telco_folder), "monthly_charges", sample_rows=300,
                         holdout_rows=200, n_trials=2, cluster=dask_client)
    large = result.params["large"]
    assert result.task.value == "regression" and result.metric == "rmse"
    target = load(str(telco_folder))["monthly_charges"]
    assert large["holdout_rmse"] < 0.5 * float(target.std())  # far better than the mean
    # Predictions are clipped to the target's range over every row, not the sample's.
    assert result.model.members[0]["clip"] == (target.min(), target.max())
    assert result.oof["prediction"].notna().all()


def test_larger_than_memory_estimates_the_table_as_pandas_holds_it(telco_folder: Path) -> None:
    from mlwright.data.dataset import larger_than_memory

    dataset = open_parquet_dataset(telco_folder)
    in_memory = int(load(str(telco_folder)).memory_usage(deep=True, index=False).sum())
    assert 0.8 * in_memory < dataset.memory_estimate() < 1.25 * in_memory
    assert dataset.memory_estimate() > 10 * dataset.uncompressed_bytes  # text, encoded
    assert not larger_than_memory(telco_folder)
    assert larger_than_memory(telco_folder, share=in_memory / 2 / _memory())
    assert not larger_than_memory("data.csv") and not larger_than_memory("postgresql://x/y")


def _memory() -> int:
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
