"""The evaluation of a trained model: metrics with intervals, the honesty check, plots,
explanations, fairness slices, and the HTML report, model card and JSON that hold them.

``evaluate(result, data=train_df, test=test_df, sensitive=["race"])`` works on a fresh
:class:`~mlwright.run.TrainResult` or on a run folder written by ``TrainResult.save`` (which
keeps the out-of-fold predictions and a sample of the training rows, so the report can be
rebuilt later with ``mlwright report RUN``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._json import json_safe
from mlwright._logging import get_logger
from mlwright.evaluate.fairness import FairnessSlice, fairness_slices
from mlwright.evaluate.scores import (
    REPORTED,
    MetricSet,
    PredictedRange,
    Predictions,
    bootstrap_scores,
    compute_metrics,
    oof_predictions,
    point_metrics,
    predictions_from,
    predictive_interval,
)
from mlwright.exceptions import ColumnNotFoundError, MlwrightError
from mlwright.run import RunFolder, TrainResult, load_run
from mlwright.scoring import DEFAULT_METRIC, canonical_name, greater_is_better
from mlwright.search.contention import one_thread_when_busy

__all__ = ["Evaluation", "evaluate"]

log = get_logger(__name__)


def _optimised(metric: str, task: str) -> str:
    """The evaluation's name for the search's metric (multiclass ROC AUC is a macro mean)."""
    name = canonical_name(metric)
    return "roc_auc_macro" if task == "multiclass" and name == "roc_auc" else name


def headline_metric(metric: str, task: str) -> str:
    """The evaluation's name for the search's metric (the task default if it has none)."""
    name = _optimised(metric, task)
    return name if name in REPORTED[task] else DEFAULT_METRIC[task]


# ---------------------------------------------------------------------------- the evaluation

@dataclass
class Evaluation:
    """Everything the report shows, computed once. :meth:`write` saves the three files."""

    target: str
    task: str
    metric: str  # the headline metric (the one the search optimised)
    classes: list[Any] | None
    threshold: float | None
    oof: MetricSet
    test: MetricSet | None
    honesty: list[PredictedRange]
    fairness: list[FairnessSlice]
    explanation: Any | None
    leaderboard: pd.DataFrame
    data_summary: dict[str, Any]
    contract_summary: list[dict[str, Any]]
    members: list[dict[str, Any]]
    lineage: dict[str, Any]
    timings: dict[str, float]
    history: list[tuple[float, float]] = field(default_factory=list)
    trials: list[tuple[float, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # --max-latency-ms / --max-size-mb: TrainResult.limits (the shipped model's figures).
    serving: dict[str, Any] | None = None
    _oof_pred: Predictions | None = field(default=None, repr=False)
    _test_pred: Predictions | None = field(default=None, repr=False)

    @property
    def greater_is_better(self) -> bool:
        return greater_is_better(self.metric)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": "mlwright.evaluation", "version": 1, "target": self.target,
            "task": self.task, "metric": self.metric,
            "classes": self.classes,
            "threshold": self.threshold, "oof": self.oof.to_dict(),
            "test": None if self.test is None else self.test.to_dict(),
            "honesty": [h.to_dict() for h in self.honesty],
            "fairness": [f.to_dict() for f in self.fairness],
            "explanation": None if self.explanation is None else self.explanation.to_dict(),
            "leaderboard": self.leaderboard.replace({np.nan: None}).to_dict(orient="records"),
            "data": self.data_summary, "contract": self.contract_summary,
            "members": self.members, "lineage": self.lineage,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "history": [list(h) for h in self.history], "notes": self.notes,
        }
        if self.serving is not None:  # only when asked for: default files stay as they were
            out["serving"] = self.serving
        return json_safe(out)

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write report.html, model_card.md and evaluation.json into ``folder``."""
        run = RunFolder(folder)
        run.path.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths = {"report": self.to_html(run.file(run.REPORT))}
        paths["model_card"] = run.file(run.MODEL_CARD)
        paths["model_card"].write_text(self.model_card(), encoding="utf-8")
        self.timings["write"] = time.perf_counter() - t0
        paths["evaluation"] = run.file(run.EVALUATION)
        paths["evaluation"].write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False),
                                       encoding="utf-8")
        return paths

    def to_html(self, path: str | Path) -> Path:
        from mlwright.evaluate._report_html import render_report

        return render_report(self, Path(path))

    def model_card(self) -> str:
        from mlwright.evaluate._report_html import model_card

        return model_card(self)


def _classes(result: TrainResult) -> list[Any] | None:
    classes = getattr(result.model, "classes", None)
    if classes is not None:
        return list(classes)
    if result.task.value == "regression":
        return None
    cols = [c for c in result.oof.columns if c.startswith("proba_")]
    return [c[len("proba_"):] for c in cols]


def _read_table(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data.rename(columns=str)
    from mlwright.data.sources import load

    return load(data)


def _training_rows(result: TrainResult,
                   data: pd.DataFrame | None) -> tuple[pd.DataFrame | None, str]:
    """Training rows indexed by their row in ``result.oof`` (all of them, or the sample)."""
    n = len(result.oof)
    if data is not None:
        frame = _read_table(data)
        if result.target in frame and len(frame) != n:
            frame = frame[frame[result.target].notna()]
        frame = frame.reset_index(drop=True)
        if len(frame) == n:
            return frame, "the training table"
        log.warning("the data has %d rows but the out-of-fold table %d; using the run's "
                    "sample of training rows instead", len(frame), n)
    if result.sample is not None:
        return result.sample, f"a sample of {len(result.sample):,} training rows"
    return None, ""


def _members(model: Any) -> list[dict[str, Any]]:
    try:
        # "folds": a member shipped as its fold models, its refit not finishing in time.
        return [{"family": m["family"], "weight": round(float(m["weight"]), 4),
                 "trial": int(m["trial"]), **({"folds": int(m["folds"])} if "folds" in m
                                              else {})} for m in model.describe()]
    except (AttributeError, KeyError, TypeError):
        return []


def _contract_summary(contract: Any, target: str) -> list[dict[str, Any]]:
    if contract is None:
        return []
    rows = []
    for c in contract.columns:
        s = c.stats
        if s.numeric is not None:
            # Enough digits that the bounds are values the column holds (2016.5, not 2016).
            values = f"{s.numeric.min:.8g} … {s.numeric.max:.8g}"
        elif c.categories is not None:
            shown = ", ".join(map(str, c.categories[:6]))
            values = shown + (f" (+{len(c.categories) - 6})" if len(c.categories) > 6 else "")
        elif s.datetime is not None:
            values = f"{s.datetime.min[:10]} … {s.datetime.max[:10]}"
        elif s.text is not None:
            values = f"{s.text.length_min}\u2013{s.text.length_max} characters"
        else:
            values = f"{s.n_unique:,} distinct"
        policies = [f"missing: {c.on_missing.value}"]
        if c.on_unknown is not None:
            policies.append(f"unknown: {c.on_unknown.value}")
        if c.on_out_of_range is not None:
            policies.append(f"out of range: {c.on_out_of_range.value}")
        rows.append({"column": c.name, "kind": c.kind.value, "dtype": c.dtype.value,
                     "missing_rate": float(s.missing_rate), "values": values,
                     "policies": ", ".join(policies), "target": c.name == target})
    return rows


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("mlwright", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost",
                "catboost", "optuna", "shap", "plotly"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _data_summary(result: TrainResult, p: Predictions, rows: np.ndarray,
                  classes: list[Any] | None, kinds: dict[str, int]) -> dict[str, Any]:
    n = len(result.oof)
    out: dict[str, Any] = {
        "n_rows": int(result.params.get("n_rows", n)), "n_features":
        int(result.params.get("n_columns", 0)), "target": result.target,
        "task": result.task.value, "validated_rows": len(rows),
        "validation": "holdout" if len(rows) < n else
        (f"{len(result.cv_scores)}-fold cross-validation" if len(result.cv_scores) > 1
         else "holdout"),
        "kinds": kinds,
    }
    out["fit_rows"] = n if out["validation"] != "holdout" else n - len(rows)
    if classes is not None:
        # Counted over every training row, as the table's heading says (the validated rows
        # are only the holdout's when validation falls back to one split).
        y_all = pd.Series(result.oof["y"].to_numpy())
        counts = [int((y_all == c).sum()) for c in classes]
        total = max(sum(counts), 1)
        out["classes"] = [{"class": str(c), "count": k, "share": float(k / total)}
                          for c, k in zip(classes, counts, strict=True)]
    else:
        y = p.y
        out["target_stats"] = {"mean": float(y.mean()), "std": float(y.std()),
                               "min": float(y.min()), "median": float(np.median(y)),
                               "max": float(y.max())}
    return out


@one_thread_when_busy
def evaluate(result: TrainResult | str | Path, data: Any = None, test: Any = None, *,
             sensitive: list[str] | tuple[str, ...] = (), bootstrap: int = 1000, seed: int = 0,
             fairness_threshold: float = 0.8, explain: bool = True,
             explain_rows: int = 500, explain_seconds: float | None = 6.0) -> Evaluation:
    """Evaluate a trained model on its out-of-fold predictions (and a test table).

    Args:
        result: a :class:`~mlwright.run.TrainResult`, or a run folder it was saved to.
        data: the training table (gives sensitive columns and explanation rows for every
            validated row); default: the sample of training rows the run kept.
        test: a held-out table (DataFrame or path) with the target column, scored too.
        sensitive: columns to report fairness slices for (from the training rows).
        bootstrap: resamples for the 95% intervals.
        fairness_threshold: flag disparity ratios below this.
        explain: compute explanations (SHAP and permutation importance on a row sample).
        explain_rows: rows the explanations are computed on.
        explain_seconds: time for the explanations (fewer rows and columns when a model is
            slow to explain, said in the notes); None: no limit.
    """
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    if isinstance(result, str | Path):
        result = load_run(result)
    task = result.task.value
    classes = _classes(result)
    threshold = getattr(result.model, "threshold", None)
    notes: list[str] = []

    t0 = time.perf_counter()
    p_oof, rows = oof_predictions(result.oof, task, classes, threshold)
    oof_metrics = compute_metrics(p_oof, n_boot=bootstrap, seed=seed)
    timings["metrics"] = time.perf_counter() - t0
    headline = headline_metric(result.metric, task)
    optimised = _optimised(result.metric, task)
    if headline != optimised:
        notes.append(f"The search optimised {result.metric!r}; the report leads with "
                     f"{headline!r}.")

    # ---- test set and the honesty check -----------------------------------------------------
    t0 = time.perf_counter()
    test_metrics, p_test, test_frame = None, None, None
    if test is not None:
        test_frame = _read_table(test)
        if result.target not in test_frame:
            raise ColumnNotFoundError(result.target, test_frame.columns,
                                      role="target column of the test table")
        test_frame = test_frame[test_frame[result.target].notna()].reset_index(drop=True)
        if test_frame.empty:
            raise MlwrightError(f"The test table has no rows with a value in "
                                f"{result.target!r}; it cannot be scored.")
        # The reference path: the compiled one is held equal to it, and compiling (reading
        # every tree into the walk, checking it on probe rows) costs a one-off table 1-3 s.
        raw = result.model.raw_predict(test_frame, compiled=False)
        p_test = predictions_from(task, test_frame[result.target].to_numpy(), raw, classes,
                                  threshold, where="test table")
        test_metrics = compute_metrics(p_test, n_boot=bootstrap, seed=seed)
    # The range CV predicts for a test set of the test's size (a fifth of the rows without one).
    n_test = len(p_test) if p_test is not None else max(10, len(p_oof) // 5)
    honesty_metrics = [headline] + [m for m in (
        ("accuracy",) if task != "regression" else ("r2",)) if m != headline]
    honesty = []
    at_test_size = bootstrap_scores(p_oof, n_boot=bootstrap, size=n_test, seed=seed + 1)
    for m in honesty_metrics:
        if m not in oof_metrics.values:
            continue
        folds = result.cv_scores if m == optimised else None  # fold scores are in it
        rng_ = predictive_interval(p_oof, m, n_test, fold_scores=folds,
                                   samples=at_test_size, point=oof_metrics.values[m].value)
        if p_test is not None:
            rng_.test_score = point_metrics(p_test).get(m)
        honesty.append(rng_)
    timings["test_and_honesty"] = time.perf_counter() - t0

    # ---- training rows: fairness and explanations ----------------------------------------------
    frame, frame_source = _training_rows(result, data)
    fairness: list[FairnessSlice] = []
    t0 = time.perf_counter()
    if sensitive:
        if frame is None:
            raise MlwrightError(
                "Fairness slices need the training rows: pass data=<training table> (CLI: "
                f"the run folder's {RunFolder.SAMPLE} is missing; train again to recreate "
                f"it).")
        positions = np.intersect1d(rows, frame.index.to_numpy())
        p_sub = p_oof.take(np.searchsorted(rows, positions))
        for col in sensitive:
            if col not in frame.columns:
                raise ColumnNotFoundError(col, frame.columns, role="sensitive column")
            fairness.append(fairness_slices(p_sub, frame.loc[positions, col], column=col,
                                            threshold=fairness_threshold))
        if len(positions) < len(rows):
            notes.append(f"Fairness slices use {frame_source} ({len(positions):,} of the "
                         f"{len(rows):,} validated rows).")
    timings["fairness"] = time.perf_counter() - t0

    explanation = None
    t0 = time.perf_counter()
    if explain:
        source = test_frame if test_frame is not None and frame is None else frame
        if source is not None:
            try:
                from mlwright.evaluate.explain import global_explanation

                # Permutation importance costs a prediction per column and repeat: on wide
                # tables fewer rows and repeats keep the report within seconds of training.
                wide = len(getattr(result.model, "feature_names", ())) > 30
                explanation = global_explanation(
                    result.model, source, source.get(result.target), metric=result.metric,
                    max_rows=explain_rows // 2 if wide else explain_rows, seed=seed,
                    n_repeats=2 if wide else 3, time_limit=explain_seconds)
                notes.extend(explanation.notes)
            except ImportError:
                notes.append("Explanations are not available (mlwright.evaluate.explain "
                             "is missing).")
            except MlwrightError as exc:
                notes.append(f"Explanations failed: {exc}")
    timings["explanations"] = time.perf_counter() - t0

    history = list(result.history)
    trials: list[tuple[float, float, str]] = []
    search = result.search
    if search is not None and hasattr(search, "trials"):
        trials = [(float(t.finished_at), float(search.metric.to_score(t.loss)), t.family)
                  for t in search.trials if t.status == "complete" and np.isfinite(t.loss)]

    kinds: dict[str, int] = {}
    if result.contract is not None:
        for c in result.contract.columns:
            if c.name != result.target:
                kinds[c.kind.value] = kinds.get(c.kind.value, 0) + 1
    timings["total"] = time.perf_counter() - t_all
    lineage = {
        "data_fingerprint": getattr(result.contract, "fingerprint", None),
        "params": result.params, "seed": result.params.get("seed"),
        "versions": _versions(), "training_timings": result.timings,
        "evaluated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_folder": None if result.folder is None else str(result.folder),
        "explained_on": frame_source or ("the test table" if explanation else None),
    }
    return Evaluation(
        target=result.target, task=task, metric=headline, classes=classes,
        threshold=threshold, oof=oof_metrics, test=test_metrics, honesty=honesty,
        fairness=fairness, explanation=explanation, leaderboard=result.leaderboard,
        data_summary=_data_summary(result, p_oof, rows, classes, kinds),
        contract_summary=_contract_summary(result.contract, result.target),
        members=_members(result.model), lineage=lineage, timings=timings, history=history,
        trials=trials, notes=notes, serving=result.limits, _oof_pred=p_oof,
        _test_pred=p_test)
