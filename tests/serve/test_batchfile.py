"""``mlwright predict MODEL DATA -o OUT`` end to end through the CLI, on a real model and
real rows (telco_churn): chunked scoring equal to in-process predict, the row id, the
prediction log, and malformed chunks that stop the run without leaving a file behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli  # tests/cli_runner.py
from mlwright.serve.runtime import load_source

pytestmark = pytest.mark.slow  # trains the session's telco model (serve/conftest.py)


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(args, monkeypatch, capsys)


@pytest.fixture(scope="module")
def rows(telco_rows: pd.DataFrame) -> pd.DataFrame:
    frame = telco_rows.copy()
    frame.insert(0, "customer", [f"c{i:04d}" for i in range(len(frame))])
    return frame


def _expected(run: Path, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    loaded = load_source(str(run))
    model = loaded.model
    features = frame[list(loaded.contract.feature_names)]
    return (np.asarray(model.predict(features)),
            np.asarray(model.raw_predict(features, compiled=False)), list(loaded.classes))


@pytest.mark.parametrize(("source", "output"), [("csv", "parquet"), ("parquet", "csv")])
def test_predict_scores_in_chunks_like_in_process(run_a, rows, tmp_path, monkeypatch, capsys,
                                                  source, output):
    data = tmp_path / f"rows.{source}"
    rows.to_csv(data, index=False) if source == "csv" else rows.to_parquet(data)
    out = tmp_path / f"scored.{output}"
    code, stdout, err = _cli(["predict", str(run_a), str(data), "-o", str(out), "--id",
                              "customer", "--chunk-rows", "97"], monkeypatch, capsys)
    assert code == 0, err
    assert f"Scored {len(rows)} rows" in " ".join(stdout.split())
    got = pd.read_csv(out) if output == "csv" else pd.read_parquet(out)
    pred, proba, classes = _expected(run_a, rows)
    assert list(got.columns) == ["customer", "prediction", *[f"proba_{c}" for c in classes]]
    assert got["customer"].tolist() == rows["customer"].tolist()
    assert got["prediction"].astype(str).tolist() == [str(p) for p in pred]
    np.testing.assert_allclose(got[[f"proba_{c}" for c in classes]].to_numpy(), proba,
                               rtol=0, atol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([data.name, out.name])


def test_rows_are_numbered_and_logged_for_monitoring(run_a, rows, tmp_path, monkeypatch,
                                                     capsys):
    data = tmp_path / "rows.parquet"
    rows.drop(columns="customer").to_parquet(data)
    out = tmp_path / "scored.parquet"
    database = tmp_path / "log.db"
    code, stdout, err = _cli(["predict", str(run_a), str(data), "-o", str(out), "--log",
                              "--database", f"sqlite:///{database}", "--chunk-rows", "150"],
                             monkeypatch, capsys)
    assert code == 0, err
    got = pd.read_parquet(out)
    assert got["row"].tolist() == list(range(len(rows)))
    assert f"{len(rows)} rows logged" in " ".join(stdout.split())
    with sqlite3.connect(database) as conn:
        logged = conn.execute("select row, prediction, role, status from predictions "
                              "order by row").fetchall()
    assert [r[0] for r in logged] == list(range(len(rows)))
    assert [r[1].strip('"') for r in logged] == got["prediction"].astype(str).tolist()
    assert {(r[2], r[3]) for r in logged} == {("champion", 200)}


def test_store_names_where_the_log_goes(run_a, rows, tmp_path, monkeypatch, capsys):
    """--store, as on train, serve and models: the log goes to that store's database."""
    data = tmp_path / "rows.parquet"
    rows.head(40).to_parquet(data)
    store = tmp_path / "elsewhere"
    code, stdout, err = _cli(["predict", str(run_a), str(data), "-o",
                              str(tmp_path / "scored.parquet"), "--log", "--store", str(store)],
                             monkeypatch, capsys)
    assert code == 0, err
    assert "40 rows logged" in " ".join(stdout.split())
    with sqlite3.connect(store / "mlwright.db") as conn:
        assert conn.execute("select count(*) from predictions").fetchone() == (40,)


def test_a_malformed_chunk_names_its_rows_and_writes_nothing(run_a, rows, tmp_path,
                                                             monkeypatch, capsys):
    bad = rows.copy()
    bad["tenure"] = bad["tenure"].astype(object)
    bad.loc[[130, 171], "tenure"] = "twelve"  # text in a number column, second chunk
    data = tmp_path / "bad.csv"
    bad.to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    code, _, err = _cli(["predict", str(run_a), str(data), "-o", str(out), "--id", "customer",
                         "--chunk-rows", "100"], monkeypatch, capsys)
    assert code != 0
    assert "rows 100-199" in err and "rows 130, 171" in err and "'tenure'" in err, err
    assert "Nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # no partial file


def test_a_refused_chunk_leaves_nothing_in_the_log(run_a, rows, tmp_path, monkeypatch,
                                                  capsys):
    # The first chunk is scored and logged before the second is refused: with no output
    # file, its logged rows are taken back (a rerun would log them again). Rows an earlier
    # run logged stay.
    database = tmp_path / "log.db"
    good = tmp_path / "good.parquet"
    rows.head(30).to_parquet(good)
    args = ["-o", str(tmp_path / "scored.parquet"), "--log", "--database",
            f"sqlite:///{database}", "--chunk-rows", "100"]
    code, _, err = _cli(["predict", str(run_a), str(good), *args], monkeypatch, capsys)
    assert code == 0, err
    bad = rows.head(250).copy()
    bad["tenure"] = bad["tenure"].astype(object)
    bad.loc[[171], "tenure"] = "twelve"
    data = tmp_path / "bad.parquet"
    bad.astype({"tenure": str}).to_parquet(data)
    code, _, err = _cli(["predict", str(run_a), str(data), *args], monkeypatch, capsys)
    assert code != 0 and "rows 100-199" in err, err
    with sqlite3.connect(database) as conn:
        assert conn.execute("select count(*), count(distinct request_id) from predictions"
                            ).fetchone() == (30, 1)


def test_a_missing_column_is_named(run_a, rows, tmp_path, monkeypatch, capsys):
    data = tmp_path / "short.parquet"
    rows.drop(columns=["contract"]).to_parquet(data)
    out = tmp_path / "scored.parquet"
    code, _, err = _cli(["predict", str(run_a), str(data), "-o", str(out)], monkeypatch,
                        capsys)
    assert code != 0 and "Column 'contract' is missing" in err, err
    assert not out.exists()


@pytest.mark.parametrize(("model", "output", "message"), [
    ("model.onnx", "out.csv", "ONNX file"),
    (None, "out.xlsx", "expected a file ending in .parquet or .csv"),
])
def test_unsupported_inputs_fail_before_reading(run_a, rows, tmp_path, monkeypatch, capsys,
                                                model, output, message):
    data = tmp_path / "rows.csv"
    rows.head(5).to_csv(data, index=False)
    code, _, err = _cli(["predict", model or str(run_a), str(data), "-o",
                         str(tmp_path / output)], monkeypatch, capsys)
    assert code != 0 and message in err, err


def test_a_malformed_parquet_part_far_into_a_dataset_names_its_rows(run_a, rows, tmp_path,
                                                                    monkeypatch, capsys):
    """A folder of Parquet parts whose last part has text in a number column and lacks a
    column: the run stops at that part, names DATA's rows, and leaves nothing behind."""
    folder = tmp_path / "parts"
    folder.mkdir()
    good = rows.head(300)
    for i in range(3):
        good.iloc[i * 100:(i + 1) * 100].to_parquet(folder / f"part-{i}.parquet", index=False)
    bad = good.iloc[:100].copy()
    bad["tenure"] = bad["tenure"].astype(object).astype(str)
    bad.loc[bad.index[[7, 42]], "tenure"] = "twelve"
    bad.to_parquet(folder / "part-3.parquet", index=False)
    out = tmp_path / "scored.parquet"
    code, _, err = _cli(["predict", str(run_a), str(folder), "-o", str(out),
                         "--chunk-rows", "100"], monkeypatch, capsys)
    assert code != 0
    text = " ".join(err.split())
    assert "rows 300-399" in text and "rows 307, 342" in text and "'tenure'" in text, text
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]  # no partial file
