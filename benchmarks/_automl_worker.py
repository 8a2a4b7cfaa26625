"""Fit one system on one prepared split and print its measurements as JSON.

Runs inside the system's own virtual environment, so it imports nothing from mlwright
unless the system is mlwright: only pandas, numpy, scikit-learn and the system itself.
Usage: python _automl_worker.py SYSTEM SPLIT_DIR BUDGET OUT_JSON
"""

from __future__ import annotations

import json
import pickle
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _fit(system: str, train: pd.DataFrame, target: str, task: str, budget: float,
         workdir: Path):
    """Fit; return (predict, predict_proba or None, size_bytes)."""
    X, y = train.drop(columns=[target]), train[target]
    if system == "mlwright":
        import joblib

        import mlwright as mw

        result = mw.train(train, target=target, time_budget=budget, seed=0)
        model = result.model
        joblib.dump(model, workdir / "model.joblib", compress=3)
        proba = model.predict_proba if task != "regression" else None
        return model.predict, proba, _dir_size(workdir / "model.joblib"), {
            "cv_score": result.cv_score,
            "ensemble": model.describe(),
            "n_trials": int((result.leaderboard["status"] == "complete").sum()),
        }
    if system == "flaml":
        from flaml import AutoML

        automl = AutoML()
        flaml_task = "regression" if task == "regression" else "classification"
        metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]
        automl.fit(X, y, task=flaml_task, metric=metric, time_budget=budget, seed=0,
                   verbose=0)
        with open(workdir / "flaml.pkl", "wb") as fh:
            pickle.dump(automl, fh)
        proba = automl.predict_proba if task != "regression" else None
        return automl.predict, proba, _dir_size(workdir / "flaml.pkl"), {
            "best_estimator": automl.best_estimator}
    if system.startswith("autogluon"):
        from autogluon.tabular import TabularPredictor

        preset = system.split("-", 1)[1]  # autogluon-medium_quality / autogluon-best_quality
        metric = {"binary": "roc_auc", "multiclass": "log_loss",
                  "regression": "root_mean_squared_error"}[task]
        predictor = TabularPredictor(label=target, eval_metric=metric, path=str(workdir / "ag"),
                                     verbosity=0)
        predictor.fit(train, time_limit=budget, presets=preset)
        proba = (lambda df: predictor.predict_proba(df).to_numpy()) if task != "regression" \
            else None
        return predictor.predict, proba, _dir_size(workdir / "ag"), {
            "best_model": predictor.model_best}
    raise SystemExit(f"unknown system {system!r}")


def main() -> None:
    system, split_dir, budget, out = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), \
        sys.argv[4]
    meta = json.loads((split_dir / "meta.json").read_text())
    target, task = meta["target"], meta["task"]
    train = pd.read_parquet(split_dir / "train.parquet")
    test = pd.read_parquet(split_dir / "test.parquet")
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{system}-"))
    try:
        t0 = time.perf_counter()
        predict, predict_proba, size, extra = _fit(system, train, target, task, budget, workdir)
        fit_s = time.perf_counter() - t0
        X_test, y_test = test.drop(columns=[target]), test[target]
        t0 = time.perf_counter()
        if task == "regression":
            pred = np.asarray(predict(X_test), dtype=float)
        else:
            proba = np.asarray(predict_proba(X_test), dtype=float)
        batch_s = time.perf_counter() - t0
        row = X_test.iloc[[0]]
        call = predict_proba if predict_proba is not None else predict
        call(row)  # warm-up
        lat = []
        for _ in range(50):
            s = time.perf_counter()
            call(row)
            lat.append(time.perf_counter() - s)
        result = {"system": system, "dataset": meta["name"], "task": task, "budget": budget,
                  "fit_s": fit_s, "batch_predict_s": batch_s,
                  "latency_ms": float(np.median(lat) * 1000), "size_mb": size / 1e6,
                  "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  **extra}
        if task == "regression":
            result["rmse"] = float(skm.root_mean_squared_error(y_test, pred))
            result["r2"] = float(skm.r2_score(y_test, pred))
        else:
            classes = meta["classes"]  # every system's predict_proba orders classes sorted
            y_idx = y_test.map({c: i for i, c in enumerate(classes)}).to_numpy()
            if task == "binary":
                result["roc_auc"] = float(skm.roc_auc_score(y_idx, proba[:, 1]))
            result["log_loss"] = float(skm.log_loss(y_idx, proba, labels=range(len(classes))))
            result["accuracy"] = float(np.mean(proba.argmax(axis=1) == y_idx))
        Path(out).write_text(json.dumps(result, default=str))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
