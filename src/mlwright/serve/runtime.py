"""What answers a prediction: model slots, A/B routing and hot swap (the micro-batcher that
gathers requests into one model call is serve/batching.py).

A :class:`Slot` holds the model of one role (champion, challenger) behind one attribute,
so a hot swap is one assignment: a batch in flight keeps the model it started with, the
next batch gets the new one, and no request is dropped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import RegistryError, ServingError

__all__ = ["Active", "Predictor", "Router", "Slot", "is_registry_ref", "load_source",
           "make_predictor"]

log = get_logger(__name__)

Predictor = Callable[[list[dict[str, Any]]], tuple[list[Any], list[list[float]] | None]]


def _pandas_predictor(loaded: Any) -> Predictor:
    """Fallback: one DataFrame per batch through the ensemble's own predict path."""
    import numpy as np
    import pandas as pd

    model = loaded.model
    names = list(loaded.contract.feature_names)
    classes = loaded.classes
    threshold = getattr(model, "threshold", None)

    def predict(records: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        frame = pd.DataFrame.from_records(records, columns=names)
        if classes is None:
            return np.asarray(model.predict(frame), dtype=float).tolist(), None
        proba = np.asarray(model.predict_proba(frame), dtype=float)
        if threshold is not None and proba.shape[1] == 2:
            idx = (proba[:, 1] >= threshold).astype(int)
        else:
            idx = proba.argmax(axis=1)
        return [classes[i] for i in idx], proba.tolist()

    return predict


def _onnx_predictor(loaded: Any, tracking_uri: str | None) -> Predictor:
    """The model exported to ONNX, run by onnxruntime (one thread: the server spreads
    requests over its cores, as for the Python predictor)."""
    import numpy as np

    from mlwright.export.core import onnx_predictor

    if hasattr(loaded.model, "predict_records"):  # an .onnx file, already a session
        session = loaded.model
    else:
        registry = None
        if loaded.run_id:
            from mlwright.registry import Registry

            registry = Registry(tracking_uri)
        session = onnx_predictor(loaded, registry=registry, threads=1)

    def predict(records: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        preds, proba = session.predict_records(records)
        return (np.asarray(preds).tolist(),
                None if proba is None else np.asarray(proba, dtype=float).tolist())

    return predict


def make_predictor(loaded: Any, *, runtime: str = "python",
                   tracking_uri: str | None = None) -> Predictor:
    """The function a batch of validated records goes through (the one place to switch):
    the compiled Python predictor, or with ``runtime="onnx"`` the ONNX export."""
    if runtime == "onnx" or hasattr(loaded.model, "predict_records"):
        return _onnx_predictor(loaded, tracking_uri)
    try:
        from mlwright.search.predictor import compile_predictor
    except ImportError:
        return _pandas_predictor(loaded)
    compiled = compile_predictor(loaded.model, loaded.contract)

    def predict(records: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        import numpy as np

        preds, proba = compiled.predict_records(records)
        out = np.asarray(preds).tolist() if not isinstance(preds, list) else preds
        return out, None if proba is None else np.asarray(proba, dtype=float).tolist()

    return predict


def is_registry_ref(source: str) -> bool:
    """``NAME``, ``NAME@alias``, ``NAME/VERSION`` or ``models:/...``: anything that is not an
    existing folder is looked up in the registry."""
    return bool(source.strip()) and not Path(source).exists()


def load_source(source: Any, *, tracking_uri: str | None = None) -> Any:
    """A ``LoadedModel`` from a run folder, a registry reference, an ``.onnx`` file written
    by ``mlwright export``, or one already loaded."""
    from mlwright.registry.model import LoadedModel
    from mlwright.run import RunFolder, file_sha256

    if isinstance(source, LoadedModel):
        return source
    text = str(source)
    folder = Path(text)
    if folder.suffix.lower() == ".onnx":
        if not folder.is_file():
            raise ServingError(f"The ONNX file {text!r} does not exist; write it with "
                               f"'mlwright export NAME@alias --format onnx -o {folder.name}'.")
        return _load_onnx(folder)
    if folder.is_dir():
        # A folder has no registry version; the model file's hash names it.
        digest = file_sha256(folder / RunFolder.MODEL)[:12] if (
            folder / RunFolder.MODEL).exists() else "0"
        return LoadedModel.from_folder(folder, name=folder.resolve().name, version=digest)
    if not is_registry_ref(text):
        raise ServingError(
            f"{text!r} is neither a run folder nor a registry reference: expected a folder "
            f"written by 'mlwright train' or NAME@champion / NAME/VERSION. Check the path or "
            f"list registered models with 'mlwright models'.")
    try:
        from mlwright.registry import load_model
    except ImportError as exc:
        raise ServingError(
            f"Cannot load {text!r}: this mlwright has no model registry yet ({exc}). Serve "
            f"a run folder instead.") from exc
    return load_model(text, tracking_uri=tracking_uri)


def _load_onnx(path: Path) -> Any:
    """A ``LoadedModel`` around an ONNX file written by ``mlwright export`` (its contract,
    name and version come from the file's metadata)."""
    from mlwright.export.runtime import OnnxPredictor
    from mlwright.registry.model import LoadedModel

    predictor = OnnxPredictor(path)
    contract = predictor.contract()
    if contract is None:
        raise ServingError(
            f"{str(path)!r} holds no data contract, which scoring checks every row against; "
            f"export the model again with 'mlwright export NAME@alias --format onnx -o "
            f"{path.name}'.")
    return LoadedModel(model=predictor, contract=contract, name=predictor.name,
                       version=predictor.version, source=str(path))


def resolve(source: str, *, tracking_uri: str | None = None) -> str | None:
    """The version an alias points at now (None when it points nowhere)."""
    try:
        from mlwright.registry import resolve_version
    except ImportError:
        return None
    try:
        return str(resolve_version(source, tracking_uri=tracking_uri))
    except RegistryError:
        return None


@dataclass(frozen=True)
class Active:
    """A loaded model and its compiled predictor: swapped as one object."""

    loaded: Any
    predict: Predictor

    @property
    def version(self) -> str:
        return str(self.loaded.version)

    @property
    def name(self) -> str:
        return str(self.loaded.name)


class Slot:
    """The model of one role; ``source`` is what it is reloaded from when an alias moves."""

    def __init__(self, role: str, source: str | None, active: Active | None) -> None:
        self.role = role
        self.source = source
        self.active = active
        self.swaps = 0

    @property
    def watchable(self) -> bool:
        return self.source is not None and is_registry_ref(self.source)

    def swap(self, active: Active | None) -> None:
        self.active = active  # one assignment: atomic for every coroutine and thread
        self.swaps += 1


class Router:
    """Chooses the arm of a request: challenger for ``share`` of keys, else champion.

    The split hashes the request's key (the caller's sticky key, else the request id), so one
    key always lands on the same arm and the shares hold over many keys.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self._cut = int(share * (1 << 64))

    def to_challenger(self, key: str) -> bool:
        if self._cut <= 0:
            return False
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._cut


def now() -> float:
    return time.time()
