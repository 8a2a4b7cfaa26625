"""An exported ONNX model run by onnxruntime, with the compiled predictor's interface.

:class:`OnnxPredictor` reads what :func:`mlwright.export.graph.build_graph` stored in the
model's metadata (the task, the classes, what each input column is fed as, and the data
contract when :func:`mlwright.export.core.export_onnx` wrote the file) and answers
``predict_frame(frame)`` and ``predict_records(records)`` with (predictions, probabilities
or None), as :class:`~mlwright.search.predictor.CompiledPredictor` does. Its feeder turns
a DataFrame into the graph's inputs by the preprocessing's own rules: categories as their
labels (``""`` for missing, ``"\\x00"`` for a value that is the empty string), text as Python's
``as_text`` (``""`` for missing or empty), numbers by the
contract's number rules, dates as whole seconds since the epoch in UTC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlwright._lazy import require
from mlwright.exceptions import ColumnNotFoundError, ExportError

__all__ = ["OnnxPredictor", "feed", "feed_records"]

META_CONTRACT = "mlwright.contract"
# The graph reads "" as missing; a value that is the empty string (an unseen category to
# the Python model) is sent as this, which no category map holds.
EMPTY = "\x00"
META_NAME = "mlwright.name"
# Rows per session call for a model with a text column (its dense TF-IDF block).
TEXT_CHUNK_ROWS = 64
META_VERSION = "mlwright.version"


def feed(frame: Any, kinds: dict[str, str]) -> dict[str, np.ndarray]:
    """The graph's inputs for ``frame``: one ``[N, 1]`` array per column of ``kinds``."""
    from mlwright.prep.table import _labels, _number_block
    from mlwright.prep.text import as_text
    from mlwright.prep.transformers import _utc_values

    missing = [c for c in kinds if c not in frame.columns]
    if missing:
        raise ColumnNotFoundError(missing[0], frame.columns, role="feature column")
    out: dict[str, np.ndarray] = {}
    for column, kind in kinds.items():
        if kind == "number":
            values = _number_block(frame, [column]).reshape(-1, 1)
        elif kind == "date":
            stamps = _utc_values(frame[column])
            seconds = stamps.astype("datetime64[s]").astype(np.int64).astype(np.float64)
            values = np.where(np.isnat(stamps), np.nan, seconds).reshape(-1, 1)
        elif kind == "text":
            values = as_text(frame[column]).astype(object).reshape(-1, 1)
        else:
            values = _strings(frame[column], _labels).reshape(-1, 1)
        out[column] = values
    return out


def _strings(col: Any, labels: Any) -> np.ndarray:
    """``_labels`` of a column with ``""`` for missing, as an object array (onnxruntime
    reads it as is); a column of text alone skips the str() of every value."""
    import pandas as pd

    values = col.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        values = labels(values)
    missing = pd.isna(values)
    empty = values == ""
    if missing.any() or empty.any():
        values = values.copy()
        values[empty] = EMPTY
        values[missing] = ""
    return values


def feed_records(records: list[dict[str, Any]], kinds: dict[str, str]
                 ) -> dict[str, np.ndarray]:
    """:func:`feed` of ``pd.DataFrame(records)`` without pandas (the compiled predictor's
    record reader, which follows pandas' dtype rules); raises
    :class:`~mlwright.prep.fast.FallbackNeeded` for a value it cannot read exactly."""
    from mlwright.prep.fast import RecordColumns

    cols = RecordColumns(records, list(kinds))
    out: dict[str, np.ndarray] = {}
    for column, kind in kinds.items():
        if kind == "number":
            values = cols.numbers(column)
        elif kind == "date":
            stamps = cols.datetimes(column)
            seconds = stamps.astype("datetime64[s]").astype(np.int64).astype(np.float64)
            values = np.where(np.isnat(stamps), np.nan, seconds)
        elif kind == "text":
            values = np.asarray(["" if v is None else v for v in cols.labels(column)],
                                dtype=object)
        else:
            values = np.asarray(["" if v is None else EMPTY if v == "" else v
                                 for v in cols.labels(column)], dtype=object)
        out[column] = values.reshape(-1, 1)
    return out


class OnnxPredictor:
    """predictions and probabilities of an exported model through onnxruntime.

    Args:
        model: a path to an ``.onnx`` file written by ``mlwright export``, or its bytes.
        threads: onnxruntime's intra-op threads (0: its default, every core).
    """

    def __init__(self, model: str | Path | bytes, *, threads: int = 0) -> None:
        ort = require("onnxruntime", feature="Scoring an ONNX model", extra="onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # its shape warnings on dynamic batches are noise
        source = model if isinstance(model, bytes) else str(model)
        shown = "the ONNX model" if isinstance(model, bytes) else repr(str(model))
        try:
            self.session = ort.InferenceSession(source, options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ExportError(f"Cannot load {shown}: {exc}") \
                from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if "mlwright.inputs" not in meta:
            raise ExportError(
                f"{shown} was not written by 'mlwright export' (it has no "
                f"mlwright metadata); export the model with 'mlwright export NAME@alias "
                f"--format onnx -o model.onnx'.")
        self.kinds: dict[str, str] = json.loads(meta["mlwright.inputs"])
        self.task = meta["mlwright.task"]
        self.regression = self.task == "regression"
        classes = json.loads(meta["mlwright.classes"])
        self.classes_ = None if classes is None else np.asarray(classes, dtype=object)
        self._by_label = None if classes is None else {str(c): c for c in classes}
        self.contract_json = meta.get(META_CONTRACT)
        # Members whose ONNX form compares in float32 what they compare in double.
        self.float32_members: list[int] = json.loads(meta.get("mlwright.float32_members",
                                                              "[]"))
        self.name = meta.get(META_NAME, "model")
        self.version = meta.get(META_VERSION, "0")
        self.feature_names = list(self.kinds)
        self._outputs = ["prediction"] if self.regression else ["label", "probabilities"]
        self._text = "text" in self.kinds.values()

    def contract(self) -> Any:
        """The data contract stored in the file (None if it holds none)."""
        if self.contract_json is None:
            return None
        from mlwright.data.contract import Contract

        return Contract.from_json(self.contract_json, origin="the ONNX model's contract")

    def run(self, frame: Any) -> list[np.ndarray]:
        """The raw outputs: ``[prediction]`` or ``[label, probabilities]``."""
        return self._run(feed(frame, self.kinds))

    def _run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The session on ``inputs``; with a text column in chunks of rows of like length
        (the linear style's TF-IDF is a dense ``[rows, vocabulary]`` block inside the
        graph, and a chunk's tokens are padded to its longest text), answers in the rows'
        own order."""
        n = len(next(iter(inputs.values()))) if inputs else 0
        if not self._text or n <= TEXT_CHUNK_ROWS:
            return list(self.session.run(self._outputs, inputs))
        # Rows of like length together: a chunk's tokens are padded to its longest text.
        size = np.zeros(n, dtype=np.int64)
        for column, kind in self.kinds.items():
            if kind == "text":
                size = np.maximum(size, np.fromiter(map(len, inputs[column].ravel()),
                                                    dtype=np.int64, count=n))
        order = np.argsort(size, kind="stable")
        parts = [self.session.run(self._outputs, {k: v[order[i:i + TEXT_CHUNK_ROWS]]
                                                  for k, v in inputs.items()})
                 for i in range(0, n, TEXT_CHUNK_ROWS)]
        out = []
        for j in range(len(self._outputs)):
            joined = np.concatenate([p[j] for p in parts])
            back = np.empty_like(joined)
            back[order] = joined
            out.append(back)
        return out

    def predict_frame(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions in the model's label space, class probabilities or None)."""
        if len(frame) == 0:
            width = 0 if self.classes_ is None else len(self.classes_)
            return (np.empty(0, dtype=float if self.regression else object),
                    None if self.regression else np.empty((0, width)))
        return self._finish(self.run(frame))

    def _finish(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.regression:
            return np.asarray(outputs[0], dtype=np.float64), None
        assert self._by_label is not None
        by_label = self._by_label
        labels = np.empty(len(outputs[0]), dtype=object)
        labels[:] = [by_label[str(v)] for v in outputs[0]]
        return labels, np.asarray(outputs[1], dtype=np.float64)

    def predict_records(self, records: list[dict[str, Any]]
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """Records (dicts keyed by column) as ``predict_frame`` of their DataFrame."""
        import pandas as pd

        from mlwright.prep.fast import FallbackNeeded

        if records:
            try:
                inputs = feed_records(records, self.kinds)
            except FallbackNeeded:
                pass
            else:
                return self._finish(self._run(inputs))
        frame = pd.DataFrame(records)
        absent = [c for c in self.feature_names if c not in frame.columns]
        if absent:  # absent everywhere: missing, as an absent key is in one record
            frame = pd.DataFrame(records, columns=[*frame.columns, *absent])
        return self.predict_frame(frame)
