"""The server starts lean: loading a model and answering requests imports neither the tuner
nor Optuna, SHAP or MLflow's tracking server.

lint-imports' `serve-lean` contract (pyproject.toml) checks mlwright's own import graph; it
cannot name a subpackage of another distribution (``mlflow.server``), and a function-level
import may still be reached at run time, so this test looks at what a real server process
has imported after a prediction.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from serve_helpers import records

HEAVY = ["optuna", "shap", "mlflow.server", "mlwright.search.engine"]

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from mlwright.serve import create_app

app = create_app(sys.argv[1], database_url=sys.argv[2], host="127.0.0.1")
with TestClient(app) as client:
    reply = client.post("/v1/predict", json={"records": json.loads(sys.argv[3])})
    assert reply.status_code == 200, reply.text
print(json.dumps(sorted(name for name in json.loads(sys.argv[4]) if name in sys.modules)))
"""


def test_serving_a_model_imports_no_training_code(run_a: Path, telco_rows: pd.DataFrame,
                                                  tmp_path: Path) -> None:
    rows = json.dumps(records(telco_rows.iloc[:5]), default=str)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run_a), f"sqlite:///{tmp_path / 'log.db'}", rows,
         json.dumps(HEAVY)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
