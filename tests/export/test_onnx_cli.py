"""``mlwright export`` end to end on a registered telco_churn model: the file and its MLflow
log beside the pyfunc, ``mlwright predict model.onnx``, and ``mlwright serve --runtime
onnx`` answering as the Python server does (same request validation)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli  # tests/cli_runner.py
from mlwright.datasets import load_suite

pytestmark = pytest.mark.slow  # a real training and registration


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code, out, err = run_cli(args, monkeypatch, capsys, columns=300)
    return code, " ".join(out.split()), err


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project folder with telco@champion (LightGBM + linear) registered in its store."""
    import mlwright as mw
    from mlwright.registry import Registry

    root = tmp_path_factory.mktemp("project")
    df = load_suite("telco_churn", nrows=1300, seed=3)
    result = mw.train(df.iloc[:1000], "churn", time_budget=60, n_trials=2,
                      families=["lightgbm", "linear"], seed=0, n_jobs=1)
    run = result.save(root / "runs" / "telco")
    uri = f"sqlite:///{(root / '.mlwright' / 'mlflow.db').as_posix()}"
    (root / ".mlwright").mkdir(exist_ok=True)
    Registry(uri).register(result, run, name="telco")
    rows = df.iloc[1000:].drop(columns="churn").reset_index(drop=True)
    return {"root": root, "uri": uri, "rows": rows, "result": result}


def test_export_writes_checks_and_logs_beside_the_pyfunc(project, monkeypatch, capsys):
    from mlwright.registry import Registry
    from mlwright.registry.exports import TAG_ONNX, logged_onnx

    monkeypatch.chdir(project["root"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project["uri"])
    code, out, err = _cli(["export", "telco@champion", "--format", "onnx", "-o",
                           "model.onnx"], monkeypatch, capsys)
    assert code == 0, err
    assert "Exported telco (version 1) to model.onnx" in out
    assert "parity holds" in out and "Logged to MLflow" in out
    data = Path("model.onnx").read_bytes()
    registry = Registry(project["uri"])
    tag = json.loads(registry.client.get_model_version("telco", "1").tags[TAG_ONNX])
    assert tag["parity"]["rows"] > len(project["rows"]) and not tag["parity"]["failures"]
    logged = logged_onnx(registry, "telco", "1")
    assert logged is not None and logged.read_bytes() == data
    # The pyfunc is still the version's model, the ONNX flavor beside it.
    run_id = registry.client.get_model_version("telco", "1").run_id
    listed = {a.path for a in registry.client.list_artifacts(run_id, "onnx")}
    assert {"onnx/MLmodel", "onnx/model.onnx"} <= listed
    assert "model" in {a.path for a in registry.client.list_artifacts(run_id)}


def test_export_refuses_a_wrong_format_or_suffix(project, monkeypatch, capsys):
    monkeypatch.chdir(project["root"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project["uri"])
    code, _, err = _cli(["export", "telco@champion", "--format", "pmml", "-o", "m.onnx"],
                        monkeypatch, capsys)
    assert code == 2 and "expected --format onnx" in err
    code, _, err = _cli(["export", "telco@champion", "-o", "m.bin"], monkeypatch, capsys)
    assert code == 2 and "expected a file ending in .onnx" in err
    assert not Path("m.onnx").exists() and not Path("m.bin").exists()


def test_predict_scores_an_onnx_file_like_the_python_model(project, monkeypatch, capsys):
    monkeypatch.chdir(project["root"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project["uri"])
    if not Path("model.onnx").exists():
        assert _cli(["export", "telco@champion", "-o", "model.onnx"], monkeypatch,
                    capsys)[0] == 0
    project["rows"].to_parquet("rows.parquet")
    code, out, err = _cli(["predict", "model.onnx", "rows.parquet", "-o", "onnx.csv",
                           "--chunk-rows", "70"], monkeypatch, capsys)
    assert code == 0, err
    assert f"Scored {len(project['rows'])} rows with telco (version 1)" in out
    got = pd.read_csv("onnx.csv")
    model = project["result"].model
    proba = model.predict_proba(project["rows"])
    np.testing.assert_allclose(got[["proba_No", "proba_Yes"]].to_numpy(), proba, atol=1e-5,
                               rtol=0)
    assert got["prediction"].tolist() == list(model.predict(project["rows"]))


def test_serve_runtime_onnx_answers_and_validates_as_python(project, monkeypatch):
    sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
    from serve_helpers import LiveServer
    from serve_helpers import records as json_records

    from mlwright.config import ServeConfig
    from mlwright.serve.app import create_app

    monkeypatch.chdir(project["root"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project["uri"])
    records = json_records(project["rows"].head(40))
    answers = {}
    for runtime in ("python", "onnx"):
        app = create_app("telco@champion", database_url=f"sqlite:///{runtime}.db",
                         tracking_uri=project["uri"], config=ServeConfig(runtime=runtime))
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as c:
            ok = c.post("/v1/predict", json={"records": records})
            bad = c.post("/v1/predict", json={"records": [{**records[0],
                                                           "tenure": "many"}]})
            server.stop()
        assert ok.status_code == 200, ok.text
        answers[runtime] = (ok.json(), bad.status_code, bad.json())
    python, onnx = answers["python"], answers["onnx"]
    assert onnx[1] == python[1] == 422 and onnx[2] == python[2]
    assert onnx[0]["predictions"] == python[0]["predictions"]
    assert onnx[0]["classes"] == python[0]["classes"]
    np.testing.assert_allclose(onnx[0]["probabilities"], python[0]["probabilities"],
                               atol=1e-5, rtol=0)


def test_a_run_folder_exports_without_mlflow(project, monkeypatch, capsys):
    monkeypatch.chdir(project["root"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project["uri"])
    code, out, err = _cli(["export", "runs/telco", "-o", "folder.onnx"], monkeypatch, capsys)
    assert code == 0, err
    assert "to folder.onnx" in out and "parity holds" in out and "Logged" not in out
    from mlwright.export.runtime import OnnxPredictor

    predictor = OnnxPredictor("folder.onnx")
    assert predictor.contract().feature_names == project["result"].contract.feature_names
    assert list(predictor.classes_) == list(project["result"].model.classes_)
