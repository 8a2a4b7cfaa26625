"""Helpers shared by the registry tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def sqlite_uri(folder: Path) -> str:
    return f"sqlite:///{(folder / 'mlflow.db').resolve().as_posix()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SCRIPT = """
import json, sys
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
X = pd.read_csv(sys.argv[2]).drop(columns=["churn"]).head(20)
out = model.predict(X)
inputs = [c.name for c in model.metadata.get_input_schema().inputs]
print(json.dumps({"columns": list(out.columns), "proba": out["proba_Yes"].tolist(),
                  "prediction": out["prediction"].tolist(), "inputs": inputs,
                  "example": model.metadata.saved_input_example_info is not None}))
"""


def fresh_predict(uri: str, model_uri: str, csv: Path) -> dict[str, Any]:
    """``mlflow.pyfunc.load_model`` + predict on 20 rows of ``csv`` in a new interpreter."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, model_uri, str(csv)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
