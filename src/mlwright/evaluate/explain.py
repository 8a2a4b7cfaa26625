"""Explanations in the user's own columns: local (``mw.explain``) and global.

**Local.** ``explain(model, rows)`` gives, for every row, one contribution per *original*
column (one-hot, ordinal, date-part and text-score features are summed back to the column
they came from through ``TablePrep.feature_origin_``), a base value and the model's output,
with ``base + sum(contributions) == output``.

**How the ensemble is made additive.** The ensemble averages its members' *probabilities*
(values, for regression), while tree SHAP values are additive in each member's raw space
(log-odds / softmax logits / the member's own target scale). Each member ``m`` is explained
exactly in its raw space (see :mod:`mlwright.evaluate.contributions`), giving ``phi_m`` with
``raw_m(x) = raw_base_m + sum(phi_m)``. Its contributions are then moved to the output space
with the DeepLIFT "rescale" rule::

    phi_m_out = phi_m * (p_m(x) - p_m(base)) / (raw_m(x) - raw_base_m)
    p_m(base) = link(raw_base_m)

and weighted by the member's ensemble weight. The ensemble's base is ``sum_m w_m p_m(base)``
and ``base + sum(phi_out) == sum_m w_m p_m(x)``, the ensemble's output, exactly. When
``raw_m(x) == raw_base_m`` (to 1e-10) the ratio is the link's derivative at ``x`` (the limit);
for one class of a multiclass member whose own logit did not move while others did, the
change in that class's probability is spread over the columns in proportion to
``sum_k (raw_k(x) - raw_base_k) * phi_k`` (the least-norm solution), which stays additive.
Binary models are explained for the positive (second) class, multiclass models for every
class (a class axis). ``output="raw"`` explains a one-member model in its raw space.

**Global.** ``global_explanation(model, X, y)`` gives mean |contribution| per column,
permutation importance of the original columns scored with the model's metric, dependence
data for the top columns and, for text columns, the n-grams that weigh most.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.exceptions import ColumnNotFoundError, ConfigError, MlwrightError

__all__ = ["GlobalExplanation", "LocalExplanation", "attach_reference", "explain",
           "explain_members", "global_explanation"]

log = get_logger(__name__)

_AGGREGATION: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_EPS = 1e-10


# ---- results ------------------------------------------------------------------------------
@dataclass
class LocalExplanation:
    """Per-row contributions of the original columns.

    Attributes:
        columns: the model's original feature columns, in order.
        values: contributions, (n_rows, n_columns); multiclass (n_rows, n_classes, n_columns).
        base_value: the expected output (a float; multiclass an array per class).
        output: the model's output per row, (n_rows,); multiclass (n_rows, n_classes):
            a probability for classification (``space="probability"``), the predicted value
            for regression, or a raw margin (``space="raw"``).
        data: the explained rows' values of ``columns``.
        classes: the classes of the output axis (binary: the positive class only).
    """

    columns: list[str]
    values: np.ndarray
    base_value: Any
    output: np.ndarray
    data: pd.DataFrame
    task: str
    classes: list[Any] | None = None
    space: str = "probability"

    @property
    def multiclass(self) -> bool:
        return self.values.ndim == 3

    def to_frame(self) -> pd.DataFrame:
        """Contributions as a frame: one row per explained row (multiclass: per row and
        class, a (row, class) index), one column per original column."""
        if not self.multiclass:
            return pd.DataFrame(self.values, columns=self.columns, index=self.data.index)
        n, k, _ = self.values.shape
        index = pd.MultiIndex.from_product([self.data.index, self.classes or range(k)],
                                           names=["row", "class"])
        return pd.DataFrame(self.values.reshape(n * k, -1), columns=self.columns, index=index)

    def top(self, k: int = 5, row: int = 0, cls: Any = None) -> pd.DataFrame:
        """The ``k`` columns that move row ``row`` (by position) the most: column, value,
        contribution, largest |contribution| first. Multiclass: for class ``cls`` (default:
        the row's most probable class)."""
        values = self.values[row]
        if self.multiclass:
            classes = list(self.classes or range(values.shape[0]))
            j = int(np.argmax(self.output[row])) if cls is None else classes.index(cls)
            values = values[j]
        order = np.argsort(-np.abs(values), kind="stable")[:k]
        data = self.data.iloc[row]
        return pd.DataFrame({"column": [self.columns[i] for i in order],
                             "value": [data.iloc[i] for i in order],
                             "contribution": values[order]})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: {task, space, classes, base_value, rows: [{output, contributions:
        {column: value}} ...]}; multiclass nests both by class."""
        rows = []
        for i in range(len(self.values)):
            if self.multiclass:
                classes = [str(c) for c in (self.classes or range(self.values.shape[1]))]
                rows.append({
                    "output": {c: float(v) for c, v in zip(classes, self.output[i],
                                                           strict=True)},
                    "contributions": {c: dict(zip(self.columns, map(float, self.values[i, j]),
                                                  strict=True))
                                      for j, c in enumerate(classes)}})
            else:
                rows.append({"output": float(self.output[i]),
                             "contributions": dict(zip(self.columns,
                                                       map(float, self.values[i]),
                                                       strict=True))})
        base = self.base_value
        if self.multiclass:
            base = {str(c): float(v) for c, v in zip(self.classes or range(len(base)), base,
                                                     strict=True)}
        else:
            base = float(base)
        # The output space by its name for the task: a regression's output is its value.
        space = "value" if self.space == "probability" and self.task == "regression" \
            else self.space
        return {"task": self.task, "space": space,
                "classes": None if self.classes is None else [_json(c) for c in self.classes],
                "base_value": base, "rows": rows}


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task, "metric": self.metric, "n_rows": self.n_rows,
            "classes": None if self.classes is None else [_json(c) for c in self.classes],
            "importance": _records(self.importance),
            "permutation": _records(self.permutation),
            "dependence": {c: {k: [_json(v) for v in f[k]] for k in f.columns}
                           for c, f in self.dependence.items()},
            "text_ngrams": {c: _records(f) for c, f in self.text_ngrams.items()},
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }


def _json(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, pd.Timestamp | np.datetime64):
        return None if pd.isna(v) else pd.Timestamp(v).isoformat()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _json(v) for k, v in row.items()} for row in frame.to_dict("records")]


# ---- the model ----------------------------------------------------------------------------
def _unwrap(model: Any) -> tuple[Any, str | None]:
    """(Ensemble, metric name or None) from an Ensemble, TrainResult, LoadedModel or
    AutoClassifier / AutoRegressor."""
    metric = None
    for _ in range(3):
        if hasattr(model, "members") and hasattr(model, "preps"):
            return model, metric
        if hasattr(model, "model_"):  # AutoClassifier / AutoRegressor
            result = getattr(model, "result_", None)
            metric = metric or getattr(getattr(result, "metric", None), "name", None)
            model = model.model_
        elif hasattr(model, "model"):  # TrainResult / LoadedModel
            m = getattr(model, "metric", None) or getattr(model, "metrics", {}).get("metric")
            metric = metric or (m if isinstance(m, str) else None)
            model = model.model
        else:
            break
    raise MlwrightError(
        f"explain() expects a model trained by mlwright (an Ensemble, a TrainResult, a "
        f"loaded model or an AutoClassifier/AutoRegressor), got {type(model).__name__}. "
        f"Train one with mw.train(df, target).")


def _aggregation(prep: Any, columns: list[str]) -> Any:
    from mlwright.evaluate.contributions import aggregation_matrix

    cached = _AGGREGATION.get(prep)
    if cached is None or cached[0] != columns:
        cached = (list(columns), aggregation_matrix(prep.feature_origin_, list(columns)))
        _AGGREGATION[prep] = cached
    return cached[1]


def _has_agnostic(ens: Any) -> bool:
    return any(_needs_background(ens, m["style"]) for m in ens.members)


def _needs_background(ens: Any, style: str) -> bool:
    from mlwright.evaluate.contributions import member_kind

    return any(m["style"] == style and member_kind(m["estimator"]) == "agnostic"
               for m in ens.members)


def _compute_reference(ens: Any, X: pd.DataFrame, *, max_rows: int = 2000,
                       n_background: int = 30, seed: int = 0) -> dict[str, dict[str, Any]]:
    X = ens._frame(X)
    rng = np.random.default_rng(seed)
    if len(X) > max_rows:
        X = X.iloc[np.sort(rng.choice(len(X), max_rows, replace=False))]
    ref: dict[str, dict[str, Any]] = {}
    for style, prep in ens.preps.items():
        Xt = prep.transform(X)
        entry: dict[str, Any] = {"mean": np.asarray(Xt.mean(axis=0), dtype=float).ravel()}
        if _needs_background(ens, style):
            pick = np.sort(rng.choice(Xt.shape[0], min(n_background, Xt.shape[0]),
                                      replace=False))
            sub = Xt[pick]
            entry["background"] = np.asarray(sub.toarray() if hasattr(sub, "toarray")
                                             else sub, dtype=float)
        ref[style] = entry
    return ref


def attach_reference(model: Any, X: pd.DataFrame, *, max_rows: int = 2000,
                     n_background: int = 30, seed: int = 0) -> None:
    """Store what explanations compare against on the model (``explain_reference_``): the
    mean of each preprocessing style's training design (linear members) and, where a kNN or
    MLP member needs it, a small background sample of it. ``train`` calls this with the
    training rows; without it, linear members are explained against the design's centre."""
    ens, _ = _unwrap(model)
    ens.explain_reference_ = _compute_reference(ens, X, max_rows=max_rows,
                                                n_background=n_background, seed=seed)


def _member_output(member: dict[str, Any], Xt: Any, task: str, n_classes: int) -> np.ndarray:
    from mlwright.search.ensemble import _member_predict

    out = np.asarray(_member_predict(member, Xt, task, None if task == "regression"
                                     else list(range(n_classes))), dtype=float)
    return out.reshape(len(out), -1)


def _explained_outputs(task: str, n_classes: int) -> list[int]:
    if task == "regression":
        return [0]
    return [1] if n_classes == 2 else list(range(n_classes))


def _channel(mc: Any, member: dict[str, Any], task: str, o: int, n_classes: int) -> int | None:
    """The raw channel that output ``o`` is computed from (None: a class the member never
    saw, whose probability is always 0)."""
    k = mc.base.shape[0]
    if task == "regression" or k == 1:
        return 0
    seen = np.asarray(getattr(member["estimator"], "classes_", np.arange(k)))
    try:
        hits = np.flatnonzero(seen.astype(int) == o)
    except (TypeError, ValueError):
        hits = np.asarray([o]) if o < k else np.asarray([], dtype=int)
    return int(hits[0]) if len(hits) else None


def _rescale(mc: Any, member: dict[str, Any], Xt: Any, task: str, n_classes: int,
             outputs: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phi (n, E, C), base (E,), output (n, E)) of one member in the ensemble's output
    space, for the explained outputs E (see the module docstring)."""
    from mlwright.evaluate.contributions import link

    raw = mc.raw                                          # (n, k)
    actual = _member_output(member, Xt, task, n_classes)  # (n, O), what the ensemble averages
    base_out = link(mc.kind, mc.base[None, :], task, member, n_classes)[0]
    n, _, C = mc.phi.shape
    phi = np.zeros((n, len(outputs), C))
    base = np.zeros(len(outputs))
    out = np.zeros((n, len(outputs)))
    d_raw_all = raw - mc.base[None, :]
    for e, o in enumerate(outputs):
        out[:, e] = actual[:, o]
        base[e] = base_out[o]
        ch = _channel(mc, member, task, o, n_classes)
        if ch is None:
            continue
        d_out = actual[:, o] - base_out[o]
        d_raw = d_raw_all[:, ch]
        moved = np.abs(d_raw) > _EPS
        ratio = np.zeros(n)
        ratio[moved] = d_out[moved] / d_raw[moved]
        phi[moved, e] = mc.phi[moved, ch] * ratio[moved, None]
        for i in np.flatnonzero(~moved):
            norm = float(d_raw_all[i] @ d_raw_all[i])
            if norm > _EPS ** 2 and mc.phi.shape[1] > 1:
                # Other logits moved: least-norm spread of this class's change.
                mix = d_raw_all[i] @ mc.phi[i]                        # (C,)
                phi[i, e] = d_out[i] * mix / norm
            else:
                h = 1e-6
                up, down = raw[i:i + 1].copy(), raw[i:i + 1].copy()
                up[0, ch] += h
                down[0, ch] -= h
                slope = (link(mc.kind, up, task, member, n_classes)[0, o]
                         - link(mc.kind, down, task, member, n_classes)[0, o]) / (2 * h)
                phi[i, e] = mc.phi[i, ch] * slope
    return phi, base, out


def _prepare(ens: Any, X: pd.DataFrame) -> dict[str, Any]:
    return {style: prep.transform(X) for style, prep in ens.preps.items()
            if any(m["style"] == style for m in ens.members)}


def _contributions(ens: Any, X: pd.DataFrame, reference: dict[str, Any] | None,
                   n_permutations: int, seed: int) -> list[tuple[dict[str, Any], Any, Any]]:
    """[(member, MemberContributions, prepared rows)] for every member."""
    from mlwright.evaluate.contributions import member_contributions

    n_classes = len(ens.classes) if ens.classes is not None else 1
    prepared = _prepare(ens, X)
    reference = reference or {}
    out = []
    for member in ens.members:
        style = member["style"]
        Xt = prepared[style]
        ref = reference.get(style, {})

        def output_fn(design: np.ndarray, member: dict[str, Any] = member) -> np.ndarray:
            return _member_output(member, design, ens.task, n_classes)

        mc = member_contributions(member, Xt, _aggregation(ens.preps[style],
                                                           ens.feature_names),
                                  mean=ref.get("mean"), background=ref.get("background"),
                                  output_fn=output_fn, n_permutations=n_permutations,
                                  seed=seed)
        out.append((member, mc, Xt))
    return out


def _reference_for(ens: Any, background: pd.DataFrame | None) -> dict[str, Any] | None:
    if background is not None:
        return _compute_reference(ens, background)
    ref = getattr(ens, "explain_reference_", None)
    if ref is None and any(m["style"] == "linear" for m in ens.members):
        log.info("the model carries no explanation reference (attach_reference): linear "
                 "members are explained against the design's centre")
    return ref


def explain(model: Any, rows: Any, *, space: str = "probability",
            background: pd.DataFrame | None = None, n_permutations: int = 4,
            seed: int = 0) -> LocalExplanation:
    """Explain ``rows`` (a DataFrame, a dict or a list of dicts) in the original columns.

    Args:
        model: an mlwright model (Ensemble, TrainResult, loaded model, AutoClassifier...).
        rows: the rows to explain, with the training columns.
        space: "probability" (the ensemble's output: probabilities, or values for
            regression) or "raw" (one-member models only: the member's margin space, where
            tree SHAP values are exact).
        background: training rows to compare against instead of the reference attached
            at training time (linear members: their design mean; kNN/MLP: a sample).
        n_permutations: permutations per row for kNN / MLP members (additive whatever
            the number; more lowers the variance).
    """
    ens, _ = _unwrap(model)
    X = ens._frame(rows)
    if space == "raw":
        members = explain_members(ens, X, background=background,
                                  n_permutations=n_permutations, seed=seed)
        if len(members) != 1:
            raise ConfigError(
                f"space='raw' explains a one-member model; this ensemble has "
                f"{len(members)} members whose raw spaces differ. Use space='probability', "
                f"or explain_members() for each member's raw explanation.")
        return members[0]
    if space != "probability":
        raise ConfigError(f"space must be 'probability' or 'raw', got {space!r}.")
    return _explain(ens, X, _reference_for(ens, background), n_permutations, seed)


def _explain(ens: Any, X: pd.DataFrame, reference: dict[str, Any] | None,
             n_permutations: int, seed: int) -> LocalExplanation:
    n_classes = len(ens.classes) if ens.classes is not None else 1
    outputs = _explained_outputs(ens.task, n_classes)
    phi = base = out = None
    for member, mc, Xt in _contributions(ens, X, reference, n_permutations, seed):
        p, b, o = _rescale(mc, member, Xt, ens.task, n_classes, outputs)
        w = float(member["weight"])
        phi = p * w if phi is None else phi + p * w
        base = b * w if base is None else base + b * w
        out = o * w if out is None else out + o * w
    assert phi is not None and base is not None and out is not None
    return _local(ens, X, phi, base, out, outputs, "probability")


def _local(ens: Any, X: pd.DataFrame, phi: np.ndarray, base: np.ndarray, out: np.ndarray,
           outputs: list[int], space: str) -> LocalExplanation:
    # Selecting columns costs about 1 ms a call; skip it when they already match.
    data = X if list(X.columns) == list(ens.feature_names) else X[ens.feature_names]
    if len(outputs) == 1:
        classes = None if ens.classes is None else [ens.classes[outputs[0]]]
        return LocalExplanation(list(ens.feature_names), phi[:, 0, :], float(base[0]),
                                out[:, 0], data, ens.task, classes, space)
    return LocalExplanation(list(ens.feature_names), phi, base, out, data, ens.task,
                            [ens.classes[o] for o in outputs], space)


def explain_members(model: Any, rows: Any, *, background: pd.DataFrame | None = None,
                    n_permutations: int = 4, seed: int = 0) -> list[LocalExplanation]:
    """Each member's exact explanation in its own raw space (log-odds / logits / values on
    the member's target scale, before ``expm1`` and clipping): ``base + sum == raw``.
    Binary members with one margin explain the positive class; forests (whose raw output
    is the class fractions) and multiclass members explain every class."""
    ens, _ = _unwrap(model)
    X = ens._frame(rows)
    data = X if list(X.columns) == list(ens.feature_names) else X[ens.feature_names]
    result = []
    for _member, mc, _Xt in _contributions(ens, X, _reference_for(ens, background),
                                           n_permutations, seed):
        phi, base = mc.phi, mc.base
        classes = None if ens.classes is None else list(ens.classes)
        if classes is not None and len(classes) == 2:
            if phi.shape[1] == 2:  # forests: the positive class's fraction
                phi, base = phi[:, 1:], base[1:]
            classes = classes[1:]
        elif classes is not None and phi.shape[1] != len(classes):
            seen = np.asarray(getattr(_member["estimator"], "classes_", []), dtype=int)
            classes = [classes[int(k)] for k in seen]
        out = base[None, :] + phi.sum(axis=2)
        if phi.shape[1] == 1:
            result.append(LocalExplanation(list(ens.feature_names), phi[:, 0], float(base[0]),
                                           out[:, 0], data, ens.task, classes, "raw"))
        else:
            result.append(LocalExplanation(list(ens.feature_names), phi, base, out, data,
                                           ens.task, classes, "raw"))
    return result


# ---- global -------------------------------------------------------------------------------
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


def _permutation(ens: Any, X: pd.DataFrame, y: np.ndarray, metric: Any, n_repeats: int,
                 seed: int, columns: list[str] | None = None) -> pd.DataFrame:
    """Shuffle each original column among the rows and measure how much the metric worsens.

    TablePrep prepares every column on its own (each output feature comes from one column,
    ``feature_origin_``), so shuffling a raw column's values is the same as shuffling the
    rows of its output features: the rows are prepared once, not once per shuffle (on
    ames_housing, 79 columns x 3 repeats, that is most of the cost).
    """
    rng = np.random.default_rng(seed)
    prepared = _prepare(ens, X)
    origins = {style: np.asarray(ens.preps[style].feature_origin_, dtype=object).astype(str)
               for style in prepared}
    baseline = metric.loss(y, _predict_design(ens, prepared))
    rows = []
    for col in ens.feature_names if columns is None else columns:
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
    from mlwright.evaluate.contributions import member_kind

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
                       max_rows_agnostic: int = 200) -> GlobalExplanation:
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
            own, else the task's default; see ``mlwright.search.metrics``).
        top_k: columns that get dependence data.
        n_repeats: shuffles per column for permutation importance.
        shap_rows: rows of the sample explained for importance and dependence.
        permutation_top: columns that get permutation importance (None: all).
        n_permutations, max_rows_agnostic: a kNN or MLP member is explained by sampling
            permutations (hundreds of predictions per row): its contributions come from at
            most ``max_rows_agnostic`` rows of the sample, with ``n_permutations`` each.
    """
    import time

    from mlwright.data.kinds import Task
    from mlwright.search.metrics import get_metric

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
    local = _explain(ens, explained, reference, n_permutations, seed)
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
        permutation = _permutation(ens, sample, _encode_y(ens, y_sample), metric_obj,
                                   n_repeats, seed, columns=columns)
        timings["permutation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ngrams = _text_ngrams(ens)
    timings["text_ngrams"] = time.perf_counter() - t0
    return GlobalExplanation(importance=importance, permutation=permutation,
                             dependence=dependence, text_ngrams=ngrams, task=ens.task,
                             metric=metric_name, n_rows=len(sample),
                             classes=None if ens.classes is None else list(ens.classes),
                             timings=timings)
