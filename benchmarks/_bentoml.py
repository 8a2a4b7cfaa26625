"""BentoML as a serving peer of benchmarks/serve.py: a service file that serves the registered
version through BentoML's adaptive batching, started with ``bentoml serve`` from a virtual
environment of its own (BentoML is never a dependency of mlwright).

The service loads the version with ``mlflow.pyfunc.load_model`` (the same pyfunc that ``mlflow
models serve`` loads) and parses the JSON records with MLflow's own parser and the model's
input schema, as ``mlflow models serve`` does, so the three servers differ in their serving
layer, not in the model or its input types.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

from _serving import HOST

# Adaptive batching: up to 32 requests of 100 rows in one batch (the batch dimension is the
# row), answered within this latency budget (BentoML's dispatcher rejects with 503 a request
# it expects to miss it; generous, so a loaded machine shows up as latency, not errors).
MAX_BATCH_ROWS = 3200
MAX_LATENCY_MS = 10_000

SERVICE = '''\
import os
from typing import Any

import bentoml
import mlflow.pyfunc
from mlflow.utils.proto_json_utils import dataframe_from_parsed_json


@bentoml.service(workers=1, traffic={{"timeout": 60}})
class Churn:
    def __init__(self) -> None:
        self.model = mlflow.pyfunc.load_model(os.environ["BENCH_MODEL_URI"])
        self.schema = self.model.metadata.get_input_schema()

    @bentoml.api(batchable=True, max_batch_size={max_batch}, max_latency_ms={max_latency})
    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        frame = dataframe_from_parsed_json(records, "records", schema=self.schema)
        return self.model.predict(frame).to_dict("records")
'''

PATH = "/predict"       # the API's route: the method's name
READY = "/readyz"


def service_source() -> str:
    return SERVICE.format(max_batch=MAX_BATCH_ROWS, max_latency=MAX_LATENCY_MS)


def start_bentoml(python: str, work: Path, model_uri: str, env: dict[str, str], port: int,
                  log: IO[bytes]) -> subprocess.Popen[bytes]:
    """``bentoml serve service:Churn`` on loopback with ``python`` (the peer's venv), in a
    session of its own so :func:`stop_bentoml` ends its worker processes too."""
    folder = work / "bentoml"
    folder.mkdir(exist_ok=True)
    (folder / "service.py").write_text(service_source())
    bin_dir = str(Path(python).parent)
    peer_env = {**env, "BENCH_MODEL_URI": model_uri, "BENTOML_HOME": str(folder / "home"),
                "BENTOML_DO_NOT_TRACK": "True",
                # mlwright's classes from this checkout, as the other servers use them
                "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.Popen(
        [python, "-m", "bentoml", "serve", "service:Churn", "--host", HOST, "--port",
         str(port)], env=peer_env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)


def stop_bentoml(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM to the server's process group (its arbiter and workers), killed past
    ``timeout``."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):  # workers that outlived their arbiter
        os.killpg(process.pid, signal.SIGKILL)
