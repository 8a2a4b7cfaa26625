"""``mlwright export``: a loaded model to one ONNX file, checked before it is written.

:func:`to_onnx` builds the graph (:mod:`mlwright.export.graph`), stores the contract and
the model's name and version in its metadata, and checks parity with the Python predictor
on the run folder's held-back rows plus probe rows (:mod:`mlwright.export.parity`); a
model that fails parity raises :class:`~mlwright.exceptions.ExportError` and nothing is
written. :func:`export_onnx` writes the file (atomically) and, for a registered version,
logs it to the version's MLflow run beside the pyfunc (:mod:`mlwright.registry.exports`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import ExportError

__all__ = ["Exported", "export_onnx", "onnx_predictor", "parity_rows", "to_onnx"]

log = get_logger(__name__)


@dataclass
class Exported:
    """An exported model: its bytes, the parity evidence, where it went."""

    data: bytes
    parity: Any              # mlwright.export.parity.Parity
    seconds: float
    path: Path | None = None
    logged: str | None = None  # the MLflow artifact URI, for a registered version


def parity_rows(loaded: Any, rows: Any = None) -> Any:
    """The rows parity is checked on: ``rows`` or the run folder's held-back rows, plus
    the probes of :func:`mlwright.export.parity.probe_rows`."""
    import pandas as pd

    from mlwright.export.parity import probe_rows
    from mlwright.run import RunFolder

    if rows is None and loaded.source:
        rows = RunFolder(loaded.source).read_sample()
    if rows is None:
        rows = pd.DataFrame(columns=list(loaded.model.feature_names))
    rows = rows.reset_index(drop=True)
    return pd.concat([rows, probe_rows(loaded.model, rows)], ignore_index=True)


def to_onnx(loaded: Any, *, rows: Any = None) -> Exported:
    """The ONNX bytes of ``loaded`` (a :class:`~mlwright.registry.model.LoadedModel`),
    once parity holds.

    Raises:
        ExportError: a member without an exact ONNX form, or parity that does not hold
            (the message names the rows and the values).
    """
    from onnx import helper

    from mlwright.export.graph import build_graph
    from mlwright.export.parity import check_parity
    from mlwright.export.runtime import META_CONTRACT, META_NAME, META_VERSION, OnnxPredictor

    started = time.monotonic()
    onx = build_graph(loaded.model, name=str(loaded.name))
    props = {p.key: p.value for p in onx.metadata_props}
    props[META_NAME] = str(loaded.name)
    props[META_VERSION] = str(loaded.version)
    if loaded.contract is not None:
        props[META_CONTRACT] = loaded.contract.to_json()
    del onx.metadata_props[:]
    helper.set_model_props(onx, props)
    data = onx.SerializeToString()
    predictor = OnnxPredictor(data, threads=1)
    frame = parity_rows(loaded, rows)
    parity = check_parity(loaded.model, predictor, frame)
    if not parity.ok:
        worst = parity.failures[0]
        raise ExportError(
            f"The ONNX model of {loaded.name} (version {loaded.version}) does not match the "
            f"Python model on {len(parity.failures)} of {parity.rows} rows checked (e.g. row "
            f"{worst['row']}: Python {worst['python']}, ONNX {worst['onnx']}), so nothing "
            f"was written. Serve the Python model, or retrain with other families "
            f"(--families) and export again.")
    return Exported(data=data, parity=parity, seconds=time.monotonic() - started)


def export_onnx(loaded: Any, out: str | Path, *, rows: Any = None, registry: Any = None
                ) -> Exported:
    """Write ``loaded`` to ``out`` as ONNX after the parity check; with ``registry`` (a
    :class:`~mlwright.registry.core.Registry`) and a registered version, also log it to
    the version's MLflow run."""
    exported = to_onnx(loaded, rows=rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    partial.write_bytes(exported.data)
    os.replace(partial, out)
    exported.path = out
    if registry is not None and loaded.run_id:
        from mlwright.registry.exports import log_onnx

        exported.logged = log_onnx(registry, loaded.name, loaded.version, out,
                                   parity=exported.parity.to_dict())
    return exported


def onnx_predictor(loaded: Any, *, registry: Any = None, threads: int = 1) -> Any:
    """An :class:`~mlwright.export.runtime.OnnxPredictor` of ``loaded``: the ONNX model
    logged with its registered version when there is one, else exported now (parity
    checked)."""
    from mlwright.export.runtime import OnnxPredictor

    if registry is not None and loaded.run_id:
        from mlwright.registry.exports import logged_onnx

        path = logged_onnx(registry, loaded.name, loaded.version)
        if path is not None:
            log.info("serving %s/%s from its logged ONNX model", loaded.name, loaded.version)
            return OnnxPredictor(path, threads=threads)
    try:
        exported = to_onnx(loaded)
    except ExportError as exc:
        raise ExportError(f"Cannot serve {loaded.name} with the ONNX runtime: {exc}") from exc
    log.info("%s/%s exported to ONNX for serving (%s)", loaded.name, loaded.version,
             exported.parity.summary())
    return OnnxPredictor(exported.data, threads=threads)
