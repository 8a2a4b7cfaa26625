"""The trained pipeline as an MLflow pyfunc model.

The MLflow model holds the whole run folder (written by ``TrainResult.save``) as its
artifact ``run``; loading it checks every file against ``manifest.json`` before anything is
unpickled, so ``mlflow.pyfunc.load_model("models:/churn@champion")`` in any process gives
the same model as ``mw.load_model("churn@champion")``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from mlwright._logging import get_logger
from mlwright.run import RunFolder

__all__ = ["MlwrightPyfunc", "input_example", "save_pyfunc", "signature"]

RUN_ARTIFACT = "run"

log = get_logger(__name__)


class MlwrightPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """Predicts a label (or value) per row, plus ``proba_<class>`` columns for classifiers."""

    # The signature comes from the contract; MLflow's inference from predict()'s type hints
    # (and its warning that there are none) is not wanted.
    _skip_type_hint_validation = True

    def load_context(self, context):
        from mlwright.registry.model import LoadedModel

        self.loaded = LoadedModel.from_folder(context.artifacts[RUN_ARTIFACT])

    def predict(self, context, model_input, params=None):
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(
            model_input)
        model = self.loaded.model
        classes = self.loaded.classes
        if hasattr(model, "predict_with_proba"):  # an Ensemble: one pass for both
            prediction, proba = model.predict_with_proba(frame)
        else:
            prediction = model.predict(frame)
            proba = model.predict_proba(frame) if classes is not None and hasattr(
                model, "predict_proba") else None
        out = pd.DataFrame({"prediction": prediction}, index=frame.index)
        if classes is not None and proba is not None:
            for i, cls in enumerate(classes):
                out[f"proba_{cls}"] = proba[:, i]
        return out


def _mlflow_type(spec: Any, values: Any = None) -> str:
    """MLflow column type for a contract column, from the example's storage when given.

    MLflow enforces dtypes strictly (int64 is not "safely" a double), so the storage of
    real rows decides; nullable integers are doubles (a gap turns them into floats).
    """
    dtype = str(getattr(spec.dtype, "value", spec.dtype))
    kind = getattr(getattr(values, "dtype", None), "kind", None)
    if kind in ("i", "u"):
        return "double" if spec.nullable else "long"
    if kind is not None and kind in "bfM":
        return {"b": "boolean", "f": "double", "M": "datetime"}[kind]
    if values is not None and dtype not in ("boolean", "datetime"):
        return "string"
    if dtype == "integer":
        return "double" if spec.nullable else "long"
    return {"float": "double", "boolean": "boolean", "datetime": "datetime"}.get(dtype,
                                                                                "string")


def signature(contract: Any, example: Any = None) -> Any:
    """Input schema from the contract's feature columns; output: prediction (+ proba_*)."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema

    cols: list[Any] = []
    for n in contract.feature_names:
        spec = contract.column(n)
        values = example[n] if example is not None and n in example.columns else None
        cols.append(ColSpec(_mlflow_type(spec, values), n, required=bool(spec.required)))
    inputs = Schema(cols)
    target = contract.target
    if target is not None and target.classes is not None:
        label_type = "string" if any(isinstance(c, str) for c in target.classes) else "double"
        if all(isinstance(c, bool) for c in target.classes):
            label_type = "boolean"
        outputs: list[Any] = [ColSpec(label_type, "prediction")]
        outputs += [ColSpec("double", f"proba_{c}") for c in target.classes]
    else:
        outputs = [ColSpec("double", "prediction")]
    return ModelSignature(inputs=inputs, outputs=Schema(outputs))


def input_example(contract: Any, sample: Any = None, n: int = 3) -> Any:
    """A few real rows when given, else one typical row built from the contract's stats;
    stored the way the signature expects."""
    import pandas as pd

    names = contract.feature_names
    if sample is not None and len(sample):
        present = [c for c in names if c in sample.columns]
        frame = sample[present].head(n).reset_index(drop=True)
    else:
        frame = pd.DataFrame([_typical_row(contract)])
    for col in frame.columns:
        spec = contract.column(col)
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            # MLflow's datetime type is zone-naive: UTC, naive
            frame[col] = frame[col].dt.tz_convert("UTC").dt.tz_localize(None)
        elif frame[col].dtype.kind in "iu" and spec.nullable:
            frame[col] = frame[col].astype("float64")
        elif frame[col].dtype.kind == "f" and _mlflow_type(spec) == "long":
            frame[col] = frame[col].round().astype("int64")
    return frame


def _typical_row(contract: Any) -> dict[str, Any]:
    import pandas as pd

    row: dict[str, Any] = {}
    for name in contract.feature_names:
        spec = contract.column(name)
        stats = spec.stats
        if stats.frequencies is not None and stats.frequencies.values:
            row[name] = stats.frequencies.values[0]
        elif stats.numeric is not None:
            qs = stats.numeric.quantiles
            row[name] = qs[len(qs) // 2] if qs else stats.numeric.mean
        elif stats.datetime is not None:
            row[name] = pd.Timestamp(stats.datetime.min)
        elif spec.categories:
            row[name] = spec.categories[0]
        else:
            row[name] = None if spec.nullable else ""
    return row


def save_pyfunc(run_folder: Path, dest: Path, contract: Any, *, sample: Any = None) -> Path:
    """Write the MLflow model to ``dest`` (no requirement inference: versions are pinned)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for pkg in ("mlwright", "scikit-learn", "lightgbm", "xgboost", "catboost", "pandas",
                "numpy", "scipy", "pyarrow", "joblib"):
        try:
            pins.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            continue
    example = None
    if sample is None:
        sample = RunFolder(run_folder).read_sample()
    if contract is not None:
        try:
            example = input_example(contract, sample)
        except Exception:  # an example is a convenience, never a reason to fail
            example = None
    sig = signature(contract, example) if contract is not None else None
    with _quiet():
        _save(run_folder, dest, sig, example, pins)
    return dest


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow warns about cloudpickle and type hints on every save: not for our users."""
    import logging
    import warnings

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _save(run_folder: Path, dest: Path, sig: Any, example: Any, pins: list[str]) -> None:
    try:
        mlflow.pyfunc.save_model(
            path=str(dest), python_model=MlwrightPyfunc(),
            artifacts={RUN_ARTIFACT: str(run_folder)}, signature=sig,
            input_example=example, pip_requirements=pins)
    except Exception as exc:
        if example is None:
            raise
        # An example MLflow cannot reconcile with the signature must not cost the version.
        import shutil

        log.warning("input example rejected by MLflow (%s); model saved without it", exc)
        shutil.rmtree(dest, ignore_errors=True)
        mlflow.pyfunc.save_model(
            path=str(dest), python_model=MlwrightPyfunc(),
            artifacts={RUN_ARTIFACT: str(run_folder)}, signature=sig, pip_requirements=pins)
