"""Global explanations: mean |contribution| per column, permutation importance of the
original columns, dependence data for the top columns, and text n-grams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright.evaluate.explain._common import _has_agnostic, _json, _records, _unwrap
from mlwright.evaluate.explain.local import _explain, _member_output, _prepare
from mlwright.evaluate.explain.reference import _compute_reference
from mlwright.exceptions import ColumnNotFoundError, MlwrightError

__all__ = ["GlobalExplanation", "global_explanation"]


@dataclass
class GlobalExplanation:
    """What the model relies on, over a sample of rows.

    Attributes:
        importance: column, mean_abs_contribution (largest first); multiclass: the mean
            over rows and classes of |contribution|.
        permutation: column, importance, std: how much the metric worsens (in its own
            units) when the column's values are shuffled among the rows; empty without y.
        dependence: for the top columns (text columns excepted), a frame of value and
            contribution per sampled row (multiclass: toward the row's predicted class,
            with a ``class`` column).
        text_ngrams: per text column, ngram and weight (signed: toward the positive class,
            a larger value, or ``class`` for multiclass), largest |weight| first.
    """

    importance: pd.DataFrame
    permutation: pd.DataFrame
    dependence: dict[str, pd.DataFrame]
    text_ngrams: dict[str, pd.DataFrame]
    task: str
    metric: str | None = None
    n_rows: int = 0
    classes: list[Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: what a time limit left out (rows explained, columns shuffled), in words
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task, "metric": self.metric, "n_rows": self.n_rows,
            "notes": list(self.notes),
            "classes": None if self.classes is None else [_json(c) for c in self.classes],
            "importance": _records(self.importance),
            "permutation": _records(self.permutation),
            "dependence": {c: {k: [_json(v) for v in f[k]] for k in f.columns}
                           for c, f in self.dependence.items()},
            "text_ngrams": {c: _records(f) for c, f in self.text_ngrams.items()},
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }


def _encode_y(ens: Any, y: Any) -> np.ndarray:
    y = pd.Series(np.asarray(y, dtype=object) if ens.classes is not None else np.asarray(y))
    if ens.classes is None:
        return pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    lookup = {c: i for i, c in enumerate(ens.classes)}
    codes = y.map(lookup)
    if codes.isna().any():
        # Labels read back from a file may be strings of the trained labels.
        by_str = {str(c): i for i, c in enumerate(ens.classes)}
        codes = codes.fillna(y.astype(str).map(by_str))
    if codes.isna().any():
        bad = y[codes.isna()].iloc[0]
        raise MlwrightError(
            f"y holds the label {bad!r}, which the model was not trained on (classes: "
            f"{list(ens.classes)}). Pass the target column of the same task.")
    return codes.to_numpy(dtype=np.int64)


def _predict_design(ens: Any, prepared: dict[str, Any]) -> np.ndarray:
    """The ensemble's output from already prepared rows (as ``Ensemble.raw_predict``)."""
    n_classes = len(ens.classes) if ens.classes is not None else 1
    total = None
    for member in ens.members:
        out = _member_output(member, prepared[member["style"]], ens.task, n_classes)
        total = out * member["weight"] if total is None else total + out * member["weight"]
    assert total is not None
    return total if ens.task != "regression" else total[:, 0]


def _shuffle_columns(Xt: Any, idx: np.ndarray, perm: np.ndarray) -> Any:
    """Xt with the rows of the columns ``idx`` permuted."""
    if not len(idx):
        return Xt
    if hasattr(Xt, "tocsr"):
        import scipy.sparse as sp

        mask = np.zeros(Xt.shape[1])
        mask[idx] = 1.0
        block = Xt.multiply(sp.csr_matrix(mask)).tocsr()
        return (Xt - block + block[perm]).tocsr()
    out = np.array(Xt, copy=True)
    out[:, idx] = Xt[perm][:, idx]
    return out


#: rows explained first to measure the cost of one row against a time limit
_PILOT_ROWS = 2


def _explain_within(ens: Any, rows: pd.DataFrame, reference: Any, n_permutations: int,
                    seed: int, budget: float | None) -> tuple[Any, int]:
    """Contributions of as many of ``rows`` as ``budget`` seconds allow (all without one).

    A pilot of two rows measures the cost per row (a kNN member explained by sampling
    permutations costs a thousand times a tree member: over a second a row on 24,000
    training rows), then the rows that fit in the time left are explained and appended.
    """
    import dataclasses
    import time

    if budget is None or len(rows) <= _PILOT_ROWS:
        return _explain(ens, rows, reference, n_permutations, seed), len(rows)
    start = time.perf_counter()
    parts = [_explain(ens, rows.iloc[:_PILOT_ROWS], reference, n_permutations, seed)]
    done = _PILOT_ROWS
    while done < len(rows):
        spent = time.perf_counter() - start
        fit = int((budget - spent) / (spent / done))
        if fit < 1:
            break
        size = min(len(rows) - done, fit)
        parts.append(_explain(ens, rows.iloc[done:done + size], reference, n_permutations,
                              seed + done))
        done += size
    if len(parts) == 1:
        return parts[0], done
    joined = dataclasses.replace(
        parts[0], values=np.concatenate([p.values for p in parts]),
        output=np.concatenate([p.output for p in parts]),
        data=pd.concat([p.data for p in parts]))
    return joined, done


def _permutation(ens: Any, X: pd.DataFrame, y: np.ndarray, metric: Any, n_repeats: int,
                 seed: int, columns: list[str] | None = None,
                 budget: float | None = None) -> pd.DataFrame:
    """Shuffle each original column among the rows and measure how much the metric worsens.

    TablePrep prepares every column on its own (each output feature comes from one column,
    ``feature_origin_``), so shuffling a raw column's values is the same as shuffling the
    rows of its output features: the rows are prepared once, not once per shuffle (on
    ames_housing, 79 columns x 3 repeats, that is most of the cost).
    """
    import time

    rng = np.random.default_rng(seed)
    prepared = _prepare(ens, X)
    origins = {style: np.asarray(ens.preps[style].feature_origin_, dtype=object).astype(str)
               for style in prepared}
    start = time.perf_counter()
    baseline = metric.loss(y, _predict_design(ens, prepared))
    per_prediction = time.perf_counter() - start
    columns = list(ens.feature_names if columns is None else columns)
    if budget is not None:
        # Columns come most important first: a time limit drops the least important.
        fit = int(budget / max(per_prediction * n_repeats, 1e-9))
        columns = columns[:max(1, fit)]
    rows: list[dict[str, Any]] = []
    for col in columns:
        # The first prediction's time is only an estimate (a busy machine slows the rest
        # down: 6 columns took 20 s of a 1.4 s budget on hpc_jobs): the clock decides too.
        spent = time.perf_counter() - start
        if budget is not None and rows and spent + spent / (len(rows) + 1 / n_repeats) > budget:
            break
        drops = []
        for _ in range(n_repeats):
            perm = rng.permutation(len(X))
            shuffled = {style: _shuffle_columns(Xt, np.flatnonzero(origins[style] == col),
                                                perm)
                        for style, Xt in prepared.items()}
            drops.append(metric.loss(y, _predict_design(ens, shuffled)) - baseline)
        rows.append({"column": col, "importance": float(np.mean(drops)),
                     "std": float(np.std(drops))})
    frame = pd.DataFrame(rows, columns=["column", "importance", "std"])
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(
        drop=True)


def _text_columns(ens: Any) -> list[str]:
    cols: list[str] = []
    for prep in ens.preps.values():
        for c in getattr(getattr(prep, "plan", None), "text", []) or []:
            if c not in cols:
                cols.append(c)
    return cols


def _top_weights(ngrams: np.ndarray, weights: np.ndarray, top: int,
                 cls: Any = None) -> pd.DataFrame:
    order = np.argsort(-np.abs(weights), kind="stable")[:top]
    frame = pd.DataFrame({"ngram": ngrams[order].astype(str), "weight": weights[order]})
    if cls is not None:
        frame.insert(0, "class", cls)
    return frame


def _text_ngrams(ens: Any, top: int = 25) -> dict[str, pd.DataFrame]:
    """The n-grams that weigh most per text column: the heaviest linear member's TF-IDF
    coefficients, else the tree style's text model (naive Bayes log-probability ratios, or
    ridge coefficients for regression)."""
    from mlwright.evaluate.explain.contributions import member_kind

    result: dict[str, pd.DataFrame] = {}
    classes = ens.classes
    linear = sorted((m for m in ens.members if member_kind(m["estimator"]) == "linear"),
                    key=lambda m: -m["weight"])
    for member in linear:
        prep = ens.preps[member["style"]]
        coef = np.atleast_2d(np.asarray(member["estimator"].coef_, dtype=float))
        names = np.asarray(prep.feature_names_out_, dtype=object)
        origin = np.asarray(prep.feature_origin_, dtype=object)
        for c in getattr(prep, "text_", {}):
            if c in result:
                continue
            idx = np.flatnonzero(origin == c)
            grams = np.asarray([str(n)[len(c) + 1:] for n in names[idx]], dtype=object)
            if coef.shape[0] == 1:
                result[c] = _top_weights(grams, coef[0, idx], top)
            else:
                result[c] = pd.concat([_top_weights(grams, coef[k, idx], top, classes[k])
                                       for k in range(coef.shape[0])], ignore_index=True)
    for prep in ens.preps.values():
        if getattr(prep, "style", None) != "tree":
            continue
        for c, scores in getattr(prep, "text_", {}).items():
            if c in result or not hasattr(scores, "model_"):
                continue
            grams = np.asarray(scores.vectorizer_.get_feature_names_out(), dtype=object)
            model = scores.model_
            if hasattr(model, "feature_log_prob_"):
                flp = np.asarray(model.feature_log_prob_, dtype=float)
                labels = [classes[int(k)] if classes is not None else k
                          for k in model.classes_]
                if flp.shape[0] == 2:
                    result[c] = _top_weights(grams, flp[1] - flp[0], top)
                else:
                    centred = flp - flp.mean(axis=0, keepdims=True)
                    result[c] = pd.concat([_top_weights(grams, centred[k], top, labels[k])
                                           for k in range(flp.shape[0])], ignore_index=True)
            elif hasattr(model, "coef_"):
                result[c] = _top_weights(grams, np.ravel(model.coef_), top)
    return result


def global_explanation(model: Any, X: pd.DataFrame, y: Any = None, *,
                       metric: str | None = None, max_rows: int = 2000, seed: int = 0,
                       top_k: int = 5, n_repeats: int = 3, shap_rows: int = 500,
                       permutation_top: int = 25, n_permutations: int = 2,
                       max_rows_agnostic: int = 200,
                       time_limit: float | None = None) -> GlobalExplanation:
    """What the model relies on, from a sample of ``max_rows`` rows of ``X``.

    Cost is what sets the defaults: exact TreeSHAP of a LightGBM member of a few hundred
    deep trees costs about 3-10 ms per row on one core, and each permutation is one
    prediction of the whole sample per column and repeat. So SHAP importance and dependence
    use a random ``shap_rows`` of the sample, and permutation importance (on the whole
    sample) covers the ``permutation_top`` columns with the largest mean |SHAP| (a column
    the model barely uses cannot matter much when shuffled); the others are left out of
    ``permutation``.

    Args:
        model: an mlwright model (Ensemble, TrainResult, loaded model...).
        X: rows with the training columns (the training or a test table).
        y: their target values (array-like, or the name of a column of ``X``); without it
            the permutation importance is empty.
        metric: the metric permutation importance is scored with (default: the model's
            own, else the task's default; see ``mlwright.scoring``).
        top_k: columns that get dependence data.
        n_repeats: shuffles per column for permutation importance.
        shap_rows: rows of the sample explained for importance and dependence.
        permutation_top: columns that get permutation importance (None: all).
        n_permutations, max_rows_agnostic: a kNN or MLP member is explained by sampling
            permutations (hundreds of predictions per row): its contributions come from at
            most ``max_rows_agnostic`` rows of the sample, with ``n_permutations`` each.
        time_limit: seconds for the contributions and the permutation importance together
            (about half each; None: no limit). Fewer rows are explained and fewer columns
            shuffled when the model is slow to explain; ``notes`` says what was left out.
    """
    import time

    from mlwright.data.kinds import Task
    from mlwright.scoring import get_metric

    ens, own_metric = _unwrap(model)
    if isinstance(y, str):
        if y not in X.columns:
            raise ColumnNotFoundError(y, X.columns, role="target column")
        y = X[y]
    frame = ens._frame(X)
    if y is not None and len(y) != len(frame):
        raise MlwrightError(f"y has {len(y)} values but X has {len(frame)} rows; pass the "
                            f"target of the same rows.")
    rng = np.random.default_rng(seed)
    n = len(frame)
    pick = np.sort(rng.choice(n, max_rows, replace=False)) if n > max_rows else np.arange(n)
    sample = frame.iloc[pick].reset_index(drop=True)
    y_sample = None if y is None else np.asarray(y, dtype=object)[pick]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    reference = getattr(ens, "explain_reference_", None) or _compute_reference(
        ens, frame, seed=seed)
    n_shap = min(shap_rows, max_rows_agnostic) if _has_agnostic(ens) else shap_rows
    explained = sample
    if len(sample) > n_shap:
        keep = np.sort(rng.choice(len(sample), n_shap, replace=False))
        explained = sample.iloc[keep].reset_index(drop=True)
    started = time.perf_counter()
    notes: list[str] = []
    shap_budget = None if time_limit is None else 0.5 * time_limit - (started - t0)
    local, n_explained = _explain_within(ens, explained, reference, n_permutations, seed,
                                         shap_budget)
    if n_explained < len(explained):
        notes.append(f"Contributions were computed on {n_explained:,} of {len(explained):,} "
                     f"sampled rows to stay within the {time_limit:g} s explanation budget.")
        explained = explained.iloc[:n_explained]
    timings["shap"] = time.perf_counter() - t0
    values = local.values
    mean_abs = np.abs(values).mean(axis=(0, 1)) if values.ndim == 3 else np.abs(
        values).mean(axis=0)
    importance = pd.DataFrame({"column": local.columns, "mean_abs_contribution": mean_abs})
    importance = importance.sort_values("mean_abs_contribution", ascending=False,
                                        kind="stable").reset_index(drop=True)
    text = set(_text_columns(ens))
    dependence: dict[str, pd.DataFrame] = {}
    index = {c: j for j, c in enumerate(local.columns)}
    for col in [c for c in importance["column"] if c not in text][:top_k]:
        j = index[col]
        if values.ndim == 3:
            pred = local.output.argmax(axis=1)
            dependence[col] = pd.DataFrame({
                "value": explained[col].to_numpy(), "contribution": values[np.arange(len(pred)),
                                                                         pred, j],
                "class": [local.classes[k] for k in pred] if local.classes else pred})
        else:
            dependence[col] = pd.DataFrame({"value": explained[col].to_numpy(),
                                            "contribution": values[:, j]})
    task = Task(ens.task)
    metric_name = metric or own_metric
    permutation = pd.DataFrame(columns=["column", "importance", "std"])
    if y_sample is not None:
        t0 = time.perf_counter()
        metric_obj = get_metric(metric_name, task)
        metric_name = metric_obj.name
        columns = list(importance["column"])
        if permutation_top is not None:
            columns = columns[:permutation_top]
        budget = (None if time_limit is None
                  else max(0.0, time_limit - (time.perf_counter() - started)))
        permutation = _permutation(ens, sample, _encode_y(ens, y_sample), metric_obj,
                                   n_repeats, seed, columns=columns, budget=budget)
        if len(permutation) < len(columns):
            notes.append(f"Permutation importance covers the {len(permutation)} columns "
                         f"with the largest contributions (of {len(columns)}) to stay within "
                         f"the {time_limit:g} s explanation budget.")
        timings["permutation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ngrams = _text_ngrams(ens)
    timings["text_ngrams"] = time.perf_counter() - t0
    return GlobalExplanation(importance=importance, permutation=permutation,
                             dependence=dependence, text_ngrams=ngrams, task=ens.task,
                             metric=metric_name, n_rows=len(sample),
                             classes=None if ens.classes is None else list(ens.classes),
                             timings=timings, notes=notes)
