"""Exported forms of a registered version, logged to its MLflow run beside the pyfunc.

``mlwright export`` logs the ONNX model as an MLflow ``onnx`` flavor model at the artifact
path ``onnx`` of the version's run, and records its sha256 and parity evidence in the
version tag ``mlwright.onnx``; :func:`logged_onnx` finds it again (``mlwright serve
--runtime onnx``), its hash checked, as every registered artifact is.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from mlwright.exceptions import IntegrityError

__all__ = ["ARTIFACT_PATH", "TAG_ONNX", "log_onnx", "logged_onnx"]

TAG_ONNX = "mlwright.onnx"
ARTIFACT_PATH = "onnx"
_FILE = "model.onnx"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def log_onnx(registry: Any, name: str, version: str, path: str | Path, *,
             parity: dict[str, Any] | None = None) -> str:
    """Log the ONNX file ``path`` to the run of ``name``/``version``; returns its URI."""
    import mlflow.onnx
    import onnx

    mv = registry.client.get_model_version(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ARTIFACT_PATH
        mlflow.onnx.save_model(onnx.load(str(path)), str(folder))
        # The flavor re-serialises the graph: log (and hash) exactly the file written.
        (folder / _FILE).write_bytes(Path(path).read_bytes())
        registry.client.log_artifacts(mv.run_id, str(folder), ARTIFACT_PATH)
    uri = f"{registry.client.get_run(mv.run_id).info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}"
    registry.client.set_model_version_tag(name, version, TAG_ONNX, json.dumps(
        {"uri": uri, "file": _FILE, "sha256": _sha256(Path(path)), "parity": parity},
        default=str))
    return uri


def logged_onnx(registry: Any, name: str, version: str) -> Path | None:
    """The ONNX file logged with ``name``/``version`` (None if none was), hash checked."""
    import mlflow.artifacts

    mv = registry.client.get_model_version(name, version)
    tag = (mv.tags or {}).get(TAG_ONNX)
    if not tag:
        return None
    info = json.loads(tag)
    dest = Path(tempfile.mkdtemp(prefix="mlwright-onnx-"))
    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"{info['uri']}/{info['file']}", dst_path=str(dest),
        tracking_uri=registry.tracking_uri))
    if _sha256(local) != info["sha256"]:
        raise IntegrityError(
            f"The ONNX model logged with {name}/{version} does not match the hash recorded "
            f"when it was exported; export it again with 'mlwright export {name}/{version} "
            f"--format onnx -o model.onnx'.")
    return local
