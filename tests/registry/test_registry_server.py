"""Against a real ``mlflow server`` on loopback: runs, metrics, aliases and loading over HTTP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from registry_helpers import fresh_predict

import mlwright as mw
from mlwright.registry import Registry

# slow: a real `mlflow server` process.
pytestmark = pytest.mark.slow


def test_register_and_load_through_a_tracking_server(mlflow_server, small_run) -> None:
    from mlflow import MlflowClient

    result, folder, _ = small_run
    reg = Registry(mlflow_server, database_url=f"sqlite:///{folder.parent}/audit-srv.db")
    v1 = reg.register(result, folder, name="telco")
    v2 = reg.register(result, folder, name="telco")
    assert (v1.aliases, v2.aliases) == (["champion"], ["challenger"])
    assert v1.source.startswith("mlflow-artifacts:")

    # What any MLflow user sees: the run with its metrics, the model with its aliases.
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(v1.run_id)
    assert run.data.metrics["cv_roc_auc"] == result.cv_score
    assert run.data.params["train.n_trials"] == "3"
    model = client.get_registered_model("telco")
    assert model.aliases == {"champion": "1", "challenger": "2"}

    loaded = mw.load_model("telco@challenger", tracking_uri=mlflow_server)
    assert loaded.version == "2"
    X = pd.read_csv(folder.parent / "telco.csv").drop(columns=["churn"]).head(30)
    np.testing.assert_allclose(loaded.model.predict_proba(X), result.predict_proba(X))

    reg.promote("telco", "2", actor="test", reason="server")
    assert mw.registry.resolve_version("telco", tracking_uri=mlflow_server) == "2"
    out = fresh_predict(mlflow_server, "models:/telco@champion", folder.parent / "telco.csv")
    np.testing.assert_allclose(out["proba"], result.predict_proba(X.head(20))[:, 1],
                               rtol=1e-6)
