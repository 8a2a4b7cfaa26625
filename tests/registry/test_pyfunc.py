"""The registered model is an MLflow pyfunc model that loads and predicts in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from registry_helpers import fresh_predict, sqlite_uri

from mlwright.registry import Registry

# slow: each test loads the model in a fresh Python process.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registered(small_run, tmp_path_factory):
    result, folder, _ = small_run
    store = tmp_path_factory.mktemp("pyfunc-store")
    reg = Registry(sqlite_uri(store))
    reg.register(result, folder, name="churn")
    return reg


def test_pyfunc_loads_and_predicts_in_a_fresh_process(registered, small_run) -> None:
    result, folder, _ = small_run
    csv = folder.parent / "telco.csv"
    out = fresh_predict(registered.tracking_uri, "models:/churn@champion", csv)
    import pandas as pd

    X = pd.read_csv(csv).drop(columns=["churn"]).head(20)
    assert out["columns"] == ["prediction", "proba_No", "proba_Yes"]
    np.testing.assert_allclose(out["proba"], result.predict_proba(X)[:, 1], rtol=1e-6)
    assert out["prediction"] == list(result.predict(X))
    # Signature from the contract; an input example stored with the model.
    assert out["inputs"] == result.contract.feature_names
    assert out["example"] is True


def test_pyfunc_refuses_a_tampered_pickle(registered, small_run) -> None:
    info = registered.show("churn/1")
    stored = Path(info.source.removeprefix("file://")) / "artifacts" / "run" / "model.joblib"
    original = stored.read_bytes()
    try:
        stored.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        env = {**os.environ, "MLFLOW_TRACKING_URI": registered.tracking_uri}
        proc = subprocess.run(
            [sys.executable, "-c", "import mlflow.pyfunc; "
             "mlflow.pyfunc.load_model('models:/churn/1')"],
            env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode != 0
        assert "IntegrityError" in proc.stderr and "does not match" in proc.stderr
    finally:
        stored.write_bytes(original)


def test_one_pass_gives_predict_and_predict_proba_with_a_threshold(small_run) -> None:
    # The pyfunc asks the ensemble for both at once; they must be what predict and
    # predict_proba answer, also once a decision threshold moves the labels.
    import copy

    import pandas as pd

    result, folder, _ = small_run
    X = pd.read_csv(folder.parent / "telco.csv").drop(columns=["churn"]).head(200)
    model = copy.deepcopy(result.model)
    for threshold in (None, 0.2):
        model.threshold = threshold
        prediction, proba = model.predict_with_proba(X)
        np.testing.assert_array_equal(prediction, model.predict(X))
        np.testing.assert_array_equal(proba, model.predict_proba(X))
    assert (prediction == "Yes").sum() > (result.model.predict(X) == "Yes").sum()
