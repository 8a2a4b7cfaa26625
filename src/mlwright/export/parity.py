"""Parity of an exported ONNX model with the Python predictor, before anything is written.

The rows: the held-back rows the run folder keeps (``sample.parquet``: training rows that
were in a validation fold) or any frame given, plus probes built from the model itself: a
row with every value missing, unseen categories (ASCII, non-ASCII and empty), texts at the
tokenizer's edges (punctuation alone, hashtags, accents and capitals, CJK, emoji,
right-to-left, Unicode spaces, the vocabulary's own words in capitals), and for every
number a tree splits on, rows holding the split thresholds exactly (the members' own
thresholds, in double where the model keeps them in double).

The test: probabilities within 1e-5 absolute, regression values within 1e-4 relative,
labels identical. LightGBM compares doubles with double thresholds, and ONNX's tree
ensembles compare in float32: a row holding a number just above one of its thresholds but
equal to it in float32 may take the other branch there, so such rows are counted apart
(``near``, with how many of them did differ) and not held to the tolerances; nor are the
labels of rows whose top two probabilities (or the probability and the decision threshold)
are within 1e-6. The other tree members are exact (see :func:`_thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PROBA_ATOL", "VALUE_RTOL", "Parity", "check_parity", "probe_rows"]

PROBA_ATOL = 1e-5
VALUE_RTOL = 1e-4
_TIE = 1e-6
_THRESHOLDS_PER_COLUMN = 24
_UNSEEN = ["__never_seen__", "ünïcødé ✓ 東京", ""]
# Texts at the edges of the tokenizer, the lowering and the counts (see export/text.py).
_TEXTS = ["!!! ??? \u201c\u201d \"\" ... -- :)", "#MAGA @realDonaldTrump #Trump2016 @FoxNews #",
          "Caf\u00e9 \u00c9COLE na\u00efve \u1e9eTRASSE stra\u00dfe \u0130STANBUL \u0130 "
          "\u041f\u0420\u0418\u0412\u0415\u0422 \u212a\u212b \u01c5 a\u0307b \ufb01 \u00bd \u216b",
          "\u6771\u4eac \U0001f600\U0001f1fa\U0001f1f8 \u0645\u0631\u062d\u0628\u0627 "
          "\u05e9\u05dc\u05d5\u05dd \u200f\u200e",
          "zxqv qwertyuiop unseenword_42",
          "tab\tsep\u00a0nbsp\u2028line\x1cfs  double\n\u3000end ",
          "   "]
_VOCABULARY_WORDS = 40


@dataclass
class Parity:
    """What the parity check compared and found."""

    rows: int
    regression: bool
    near: int = 0                  # rows within a float32 step of a tree threshold
    near_differ: int = 0           # of those, rows past the tolerance
    ties: int = 0                  # rows on a decision boundary (labels not compared)
    max_error: float = 0.0         # max |p - p'| (classes) or relative error (values)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        what = "relative error" if self.regression else "probability error"
        return (f"{self.rows:,} rows compared, max {what} {self.max_error:.2e}, "
                f"{self.near} within a float32 step of a tree threshold"
                f"{f' ({self.near_differ} of them differ)' if self.near_differ else ''}"
                + ("" if self.regression else f", {self.ties} on a decision boundary")
                + (", parity holds" if self.ok else f", {len(self.failures)} rows differ"))

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "near_threshold": self.near,
                "near_threshold_differ": self.near_differ, "boundary_ties": self.ties,
                "max_error": self.max_error, "failures": self.failures[:20],
                "tolerance": VALUE_RTOL if self.regression else PROBA_ATOL,
                "kind": "relative" if self.regression else "absolute"}


# ---- thresholds -------------------------------------------------------------------------------

def _tree_thresholds(est: Any) -> dict[int, np.ndarray]:
    """feature index -> the numeric split thresholds of a tree model (as it compares)."""
    out: dict[int, list[float]] = {}
    module = type(est).__module__
    if module.startswith("lightgbm"):
        def walk(node: dict[str, Any]) -> None:
            if "split_feature" not in node:
                return
            if node.get("decision_type") == "<=":
                out.setdefault(int(node["split_feature"]), []).append(float(node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

        for tree in est.booster_.dump_model()["tree_info"]:
            walk(tree["tree_structure"])
    elif module.startswith("xgboost"):
        table = est.get_booster().trees_to_dataframe()
        table = table[table["Feature"] != "Leaf"]
        for feat, split in zip(table["Feature"], table["Split"], strict=True):
            index = int(str(feat).lstrip("f")) if str(feat).lstrip("f").isdigit() else None
            if index is not None:
                out.setdefault(index, []).append(float(split))
    elif type(est).__name__ == "CatBoostModel":
        borders = est.model_.get_borders()
        for index, values in borders.items():
            out.setdefault(int(index), []).extend(float(v) for v in values)
    elif module.startswith("sklearn.ensemble") and hasattr(est, "estimators_"):
        for tree in np.ravel(est.estimators_):
            t = tree.tree_
            split = t.feature >= 0
            for f, v in zip(t.feature[split], t.threshold[split], strict=True):
                out.setdefault(int(f), []).append(float(v))
    elif module.startswith("sklearn.ensemble") and hasattr(est, "_predictors"):
        for stage in est._predictors:
            for predictor in stage:
                nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
                for f, v in zip(nodes["feature_idx"], nodes["num_threshold"], strict=True):
                    out.setdefault(int(f), []).append(float(v))
    return {f: np.unique(np.asarray(v, dtype=np.float64)) for f, v in out.items()}


def _thresholds(model: Any, *, members: list[int] | None = None
                ) -> dict[str, dict[int, np.ndarray]]:
    """style -> feature -> thresholds, over every tree member of that style (or of
    ``members``: those whose ONNX form compares in float32 what they compare in double, a
    LightGBM model written by onnxmltools. The others are exact: XGBoost and CatBoost
    compare float32 with float32, scikit-learn forests float32 with a threshold the export
    rounds down to float32, HistGradientBoosting and LightGBM graphs are double)."""
    merged: dict[str, dict[int, list[np.ndarray]]] = {}
    for i, member in enumerate(model.members):
        if members is not None and i not in members:
            continue
        found = _tree_thresholds(member["estimator"])
        style = merged.setdefault(member["style"], {})
        for f, values in found.items():
            style.setdefault(f, []).append(values)
    return {s: {f: np.unique(np.concatenate(v)) for f, v in features.items()}
            for s, features in merged.items()}


def _near(X: np.ndarray, thresholds: dict[int, np.ndarray]) -> np.ndarray:
    """Rows whose branch at some threshold ``t`` may differ in float32: a value ``x > t``
    (the model goes right) with ``float32(x) == float32(t)`` (the ONNX tree, which rounds
    both to the nearest float32, goes left). Rounding is monotonic, so the nearest
    threshold below ``x`` is the only one to check."""
    near = np.zeros(len(X), dtype=bool)
    for f, values in thresholds.items():
        if f >= X.shape[1] or not len(values):
            continue
        x = X[:, f]
        below = np.searchsorted(values, x, side="left") - 1
        has = (below >= 0) & ~np.isnan(x)
        t = values[np.clip(below, 0, None)]
        near |= has & (x > t) & (x.astype(np.float32) == t.astype(np.float32))
    return near


# ---- probe rows -------------------------------------------------------------------------------

def probe_rows(model: Any, base: Any, thresholds: dict[str, dict[int, np.ndarray]] | None = None
               ) -> Any:
    """Rows that touch the model's edges, built on the first row of ``base``
    (``thresholds``: ``_thresholds(model)`` when already read)."""
    import pandas as pd

    template = base.iloc[[0]].copy() if len(base) else pd.DataFrame(
        [dict.fromkeys(model.feature_names)])
    rows = [template.copy()]
    missing = template.copy()
    for c in missing.columns:
        missing[c] = None
    rows.append(missing)
    strings: list[str] = []
    numbers: dict[str, int] = {}
    for prep in model.preps.values():
        plan = prep.plan
        strings += [*plan.categorical, *plan.high_cardinality, *plan.boolean, *plan.text]
        offset = prep.n_ordinal_
        for j, c in enumerate(plan.numeric):
            if prep.style == "tree":
                numbers[c] = offset + j
    for value in _UNSEEN:
        row = template.copy()
        for c in dict.fromkeys(strings):
            row[c] = value
        rows.append(row)
    for c, texts in _text_probes(model).items():
        block = pd.concat([template] * len(texts), ignore_index=True)
        block[c] = texts
        rows.append(block)
    tree = (thresholds if thresholds is not None else _thresholds(model)).get("tree", {})
    for c, f in numbers.items():
        values = tree.get(f)
        if values is None or not len(values):
            continue
        picked = values[np.linspace(0, len(values) - 1, min(len(values),
                                                             _THRESHOLDS_PER_COLUMN)).astype(int)]
        block = pd.concat([template] * len(picked), ignore_index=True)
        block[c] = picked.astype(np.float64)
        rows.append(block)
    out = pd.concat(rows, ignore_index=True)
    for c in out.columns:  # a None in a numeric column: NaN, as a loaded table has it
        if c in numbers:
            out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def _text_probes(model: Any) -> dict[str, list[str]]:
    """column -> probe texts: :data:`_TEXTS`, and the vocabulary's own words and bigrams
    in capitals, title case and with every other letter raised (the lowering's cases)."""
    out: dict[str, list[str]] = {}
    for prep in model.preps.values():
        for c, vec in getattr(prep, "text_", {}).items():
            vec = getattr(vec, "vectorizer_", vec)
            vocabulary = getattr(vec, "vocabulary_", None)
            texts = out.setdefault(c, list(_TEXTS))
            if not vocabulary:
                continue
            idf = getattr(vec, "idf_", None)  # the most common terms first
            terms = sorted(vocabulary, key=lambda t: (
                0.0 if idf is None else float(idf[vocabulary[t]]), t))[:_VOCABULARY_WORDS]
            words = " ".join(terms)
            texts += [words, words.upper(), words.title(),
                      "".join(ch.upper() if i % 2 else ch for i, ch in enumerate(words))]
    return out


# ---- the check --------------------------------------------------------------------------------

def check_parity(model: Any, predictor: Any, frame: Any) -> Parity:
    """Compare ``predictor`` (an :class:`~mlwright.export.runtime.OnnxPredictor`) with the
    model's Python predictor on ``frame``."""
    inexact = list(getattr(predictor, "float32_members", []))
    thresholds: dict[str, dict[int, np.ndarray]] = (
        _thresholds(model, members=inexact) if inexact else {})
    regression = str(model.task) == "regression"
    ref = np.asarray(model.raw_predict(frame), dtype=np.float64)
    pred, proba = predictor.predict_frame(frame)
    near = np.zeros(len(frame), dtype=bool)
    for style, found in thresholds.items():
        if found:
            X = model.preps[style].transform(frame)
            X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
            near |= _near(X, found)
    result = Parity(rows=len(frame), regression=regression, near=int(near.sum()))
    if regression:
        got = np.asarray(pred, dtype=np.float64)
        error = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-6)
        error = np.where(np.isnan(got) & np.isnan(ref), 0.0, error)
        bad = ~(error <= VALUE_RTOL) & ~near
        result.near_differ = int((~(error <= VALUE_RTOL) & near).sum())
        result.max_error = float(np.nanmax(np.where(near, 0.0, error))) if len(error) else 0.0
        for i in np.flatnonzero(bad)[:20]:
            result.failures.append({"row": int(i), "python": float(ref[i]),
                                    "onnx": float(got[i]), "relative_error": float(error[i])})
        return result
    assert proba is not None
    error = np.abs(proba - ref).max(axis=1)
    threshold = getattr(model, "threshold", None)
    labels = np.asarray(model.classes_, dtype=object)
    if threshold is not None and ref.shape[1] == 2:
        expected = labels[(ref[:, 1] >= threshold).astype(int)]
        tie = np.abs(ref[:, 1] - threshold) < _TIE
    else:
        expected = labels[ref.argmax(axis=1)]
        top = np.sort(ref, axis=1)
        tie = (top[:, -1] - top[:, -2] < _TIE) if ref.shape[1] > 1 else np.zeros(len(ref), bool)
    result.ties = int((tie & ~near).sum())
    result.max_error = float(np.max(np.where(near, 0.0, error))) if len(error) else 0.0
    differ = np.asarray([a != b for a, b in zip(pred, expected, strict=True)], dtype=bool)
    bad = ((error > PROBA_ATOL) | (differ & ~tie)) & ~near
    result.near_differ = int(((error > PROBA_ATOL) & near).sum())
    for i in np.flatnonzero(bad)[:20]:
        result.failures.append({"row": int(i), "python": ref[i].round(8).tolist(),
                                "onnx": proba[i].round(8).tolist(),
                                "python_label": str(expected[i]), "onnx_label": str(pred[i])})
    return result
