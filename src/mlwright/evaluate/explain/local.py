"""Local explanations: mw.explain (each row in the ensemble's output space, made additive
by the rescale rule of the package docstring) and explain_members (each member raw)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.kinds import Task
from mlwright.evaluate.explain._common import _EPS, _aggregation, _json, _unwrap
from mlwright.evaluate.explain.reference import _reference_for
from mlwright.exceptions import ConfigError

__all__ = ["LocalExplanation", "explain", "explain_members"]


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
        """The ``k`` columns that move row ``row`` (by position) the most: row (the
        explained row's index label, so a reader knows which one), column, value,
        contribution, largest |contribution| first. Multiclass: for class ``cls`` (default:
        the row's most probable class), named in a ``class`` column."""
        if not -len(self.values) <= row < len(self.values):
            raise IndexError(f"row {row} is out of range: {len(self.values)} rows were "
                             f"explained (positions 0 to {len(self.values) - 1}).")
        values = self.values[row]
        label = self.data.index[row]
        head: dict[str, Any] = {"row": label}
        if self.multiclass:
            classes = list(self.classes or range(values.shape[0]))
            j = int(np.argmax(self.output[row])) if cls is None else classes.index(cls)
            values = values[j]
            head["class"] = classes[j]
        order = np.argsort(-np.abs(values), kind="stable")[:k]
        data = self.data.iloc[row]
        return pd.DataFrame({**{name: [v] * len(order) for name, v in head.items()},
                             "column": [self.columns[i] for i in order],
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


def _member_output(member: dict[str, Any], Xt: Any, task: str, n_classes: int) -> np.ndarray:
    from mlwright.search.ensemble import _member_predict

    out = np.asarray(_member_predict(member, Xt, Task(task), None if task == "regression"
                                     else list(range(n_classes))), dtype=np.float64)
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
    from mlwright.evaluate.explain.contributions import link

    raw = mc.raw                                          # (n, k)
    actual = _member_output(member, Xt, task, n_classes)  # (n, O), what the ensemble averages
    base_out = link(mc.kind, mc.base[None, :], Task(task), member, n_classes)[0]
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
                slope = (link(mc.kind, up, Task(task), member, n_classes)[0, o]
                         - link(mc.kind, down, Task(task), member, n_classes)[0, o]) / (2 * h)
                phi[i, e] = mc.phi[i, ch] * slope
    return phi, base, out


def _prepare(ens: Any, X: pd.DataFrame) -> dict[str, Any]:
    return {style: prep.transform(X) for style, prep in ens.preps.items()
            if any(m["style"] == style for m in ens.members)}


def _contributions(ens: Any, X: pd.DataFrame, reference: dict[str, Any] | None,
                   n_permutations: int, seed: int) -> list[tuple[dict[str, Any], Any, Any]]:
    """[(member, MemberContributions, prepared rows)] for every member."""
    from mlwright.evaluate.explain.contributions import member_contributions

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

