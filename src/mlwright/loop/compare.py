"""Challenger against champion on the same labelled rows: paired statistics and a decision.

Both models score the *same* rows, so the comparison is paired: a paired bootstrap of the
metric difference (:func:`mlwright.scoring.intervals.paired_bootstrap`) and, for
classification, McNemar's exact test on the discordant decisions. Guarded slices (values of
chosen columns) must not get worse beyond a tolerance. ``decide`` turns a
:class:`Comparison` into a :class:`Decision` whose ``to_dict()`` is the audit evidence.

Sign convention: ``improvement`` is positive when the challenger is better, whatever the
metric's direction (for log loss or RMSE it is champion minus challenger).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from mlwright._json import json_safe
from mlwright.exceptions import LoopError, MlwrightError
from mlwright.scoring import score_or_nan
from mlwright.scoring.intervals import paired_bootstrap, paired_differences

__all__ = ["Comparison", "Decision", "compare", "decide", "mcnemar"]


# --------------------------------------------------------------------------- statistics

@dataclass(frozen=True)
class McNemarResult:
    champion_only: int          # b: champion right, challenger wrong
    challenger_only: int        # c: challenger right, champion wrong
    p_value: float              # exact, one-sided: the challenger is right more often
    p_two_sided: float
    champion_accuracy: float
    challenger_accuracy: float


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """McNemar's exact test on paired correctness (a = champion, b = challenger).

    Only discordant rows count: under H0 each is equally likely to favour either model, so
    ``c ~ Binomial(b + c, 1/2)``. Exact at every sample size (no chi-squared approximation).
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.size == 0:
        raise LoopError(f"mcnemar needs two equally long, non-empty correctness vectors; got "
                        f"{a.shape} and {b_.shape}.")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    if b + c == 0:
        p_one = p_two = 1.0
    else:
        p_one = float(binomtest(c, b + c, 0.5, alternative="greater").pvalue)
        p_two = float(binomtest(c, b + c, 0.5, alternative="two-sided").pvalue)
    return McNemarResult(b, c, p_one, p_two, float(a.mean()), float(b_.mean()))


# --------------------------------------------------------------------------- models

def _estimator(model: Any) -> Any:
    """The predicting object of a LoadedModel / TrainResult / estimator."""
    inner = getattr(model, "model", None)
    return inner if inner is not None and hasattr(inner, "predict") else model


def _version(model: Any) -> str | None:
    v = getattr(model, "version", None)
    return None if v is None else str(v)


@dataclass
class _Scored:
    y: np.ndarray               # label-encoded (classification) or values
    raw: np.ndarray             # proba (n, k) or values (n,)
    decision: np.ndarray | None  # predicted labels, encoded


def _score_model(est: Any, X: Any, y_enc: np.ndarray, classes: list[Any] | None) -> _Scored:
    if classes is None:
        raw = np.asarray(est.predict(X), dtype=float)
        return _Scored(y_enc, raw, None)
    proba = np.asarray(est.predict_proba(X), dtype=float)
    own = [str(c) for c in getattr(est, "classes_", classes)]
    # Put the model's columns in the reference class order (a class it never saw gets 0).
    raw = np.zeros((len(y_enc), len(classes)))
    for j, c in enumerate(classes):
        if str(c) in own:
            raw[:, j] = proba[:, own.index(str(c))]
    labels = np.asarray(est.predict(X)).astype(str)
    lookup = {str(c): i for i, c in enumerate(classes)}
    decision = np.array([lookup.get(v, -1) for v in labels])
    return _Scored(y_enc, raw, decision)


# --------------------------------------------------------------------------- comparison

@dataclass
class Comparison:
    """Champion against challenger on the same rows; ``to_dict()`` is the audit evidence."""

    metric: str
    greater_is_better: bool
    task: str
    n_rows: int
    champion_version: str | None
    challenger_version: str | None
    champion_score: float
    challenger_score: float
    improvement: float
    ci_low: float
    ci_high: float
    p_value: float
    margin: float
    n_boot: int
    mcnemar: dict[str, Any] | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def _slices(frame: Any, columns: Sequence[str], y: np.ndarray, a: _Scored, b: _Scored,
            metric: Any, sign: float, min_rows: int, tolerance: float, n_boot: int,
            seed: int) -> list[dict[str, Any]]:
    import pandas as pd

    out: list[dict[str, Any]] = []
    for col in columns:
        if col not in frame.columns:
            raise LoopError(
                f"loop.guarded_slices names {col!r}, which is not a column of the comparison "
                f"data (columns: {', '.join(map(str, frame.columns[:20]))}). Fix the config.")
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values) and values.nunique(dropna=True) > 10:
            keys = pd.qcut(values, 4, duplicates="drop").astype(str)
        else:
            keys = values.astype(str)
        keys = keys.where(values.notna(), "(missing)").to_numpy()
        for key in sorted(set(keys)):
            mask = keys == key
            n = int(mask.sum())
            champ = score_or_nan(metric, y[mask], a.raw[mask])
            chall = score_or_nan(metric, y[mask], b.raw[mask])
            diff = sign * (chall - champ)
            enforced = bool(n >= min_rows and math.isfinite(diff))
            row = {"column": col, "value": key, "n": n, "champion": champ,
                   "challenger": chall, "improvement": diff, "enforced": enforced,
                   "ci_low": None, "ci_high": None, "p_worse": None}
            if enforced and diff < -tolerance:
                # Is it worse beyond the tolerance, or is a small slice just noisy? One-sided
                # paired bootstrap of H0 "improvement >= -tolerance" on the slice's rows.
                boot = paired_differences(y[mask], a.raw[mask], b.raw[mask], metric.score,
                                          sign=sign, n_boot=n_boot, seed=seed)
                if len(boot):
                    row["ci_low"], row["ci_high"] = (float(v) for v in
                                                     np.quantile(boot, [0.025, 0.975]))
                    row["p_worse"] = (1 + int(np.sum(boot >= -tolerance))) / (1 + len(boot))
            out.append(row)
    return out


def compare(champion: Any, challenger: Any, data: Any, *, target: str,
            metric: str | None = None, margin: float = 0.0, n_boot: int = 1000,
            seed: int = 0, guarded_slices: Sequence[str] = (), min_slice_rows: int = 30,
            slice_tolerance: float = 0.02, part_column: str | None = None) -> Comparison:
    """Score both models on ``data`` (features + ``target``) and compare them pairwise.

    Args:
        champion, challenger: LoadedModel, TrainResult, or fitted estimators (Ensemble).
        data: a DataFrame of labelled rows neither model should have trained on (the
            challenger at least; a champion that saw some of them is favoured, which errs on
            the safe side).
        target: the label column.
        metric: the metric name (default: the champion's training metric, else the task's).
        margin: the improvement the challenger must exceed (metric units).
        guarded_slices: columns whose values form slices reported (and later guarded); a
            slice (numeric columns: quartiles) with at least ``min_slice_rows`` rows whose
            improvement is below ``-slice_tolerance`` gets a paired bootstrap p-value
            (``p_worse``) of "not worse beyond the tolerance".
        part_column: a column naming where each row came from (e.g. recent / holdout); a
            per-part score table is added and the column is not a feature.
    """
    import pandas as pd

    from mlwright.data.kinds import Task
    from mlwright.scoring import get_metric

    if not isinstance(data, pd.DataFrame) or target not in data.columns:
        raise LoopError(f"compare needs a DataFrame holding the label column {target!r}; got "
                        f"{type(data).__name__} with columns "
                        f"{list(getattr(data, 'columns', []))[:10]}.")
    frame = data[data[target].notna()].reset_index(drop=True)
    if len(frame) == 0:
        raise LoopError(f"No labelled rows to compare on (column {target!r} is all missing).")
    est_a, est_b = _estimator(champion), _estimator(challenger)
    task = Task(str(getattr(est_a, "task", "binary")))
    if metric in (None, "auto"):
        metric = (getattr(champion, "metrics", {}) or {}).get("metric") or None
    m = get_metric(metric, task)
    classes: list[Any] | None = None
    if task is Task.REGRESSION:
        y = frame[target].to_numpy(dtype=float)
    else:
        classes = [c for c in np.asarray(est_a.classes_).tolist()]
        lookup = {str(c): i for i, c in enumerate(classes)}
        labels = frame[target].astype(str).to_numpy()
        unknown = sorted(set(labels) - set(lookup))
        if unknown:
            raise LoopError(
                f"The labels {unknown[:5]} in {target!r} are not classes of the champion "
                f"({classes}); feedback labels must use the training data's classes.")
        y = np.array([lookup[v] for v in labels])
    X = frame.drop(columns=[c for c in (target, part_column) if c is not None])
    a = _score_model(est_a, X, y, classes)
    b = _score_model(est_b, X, y, classes)
    try:
        boot = paired_bootstrap(y, a.raw, b.raw, m.score,
                                greater_is_better=m.greater_is_better, margin=margin,
                                n_boot=n_boot, seed=seed)
    except MlwrightError as exc:
        raise LoopError(f"{exc} Collect more labelled feedback.") from None
    mc = None
    if a.decision is not None and b.decision is not None:
        mc = asdict(mcnemar(a.decision == y, b.decision == y))
    sign = 1.0 if m.greater_is_better else -1.0
    parts: dict[str, dict[str, Any]] = {}
    if part_column is not None:
        for part in sorted(frame[part_column].astype(str).unique()):
            mask = (frame[part_column].astype(str) == part).to_numpy()
            ca = score_or_nan(m, y[mask], a.raw[mask])
            cb = score_or_nan(m, y[mask], b.raw[mask])
            parts[part] = {"n": int(mask.sum()), "champion": ca, "challenger": cb,
                           "improvement": sign * (cb - ca)}
    return Comparison(
        metric=m.name, greater_is_better=m.greater_is_better, task=task.value,
        n_rows=len(frame), champion_version=_version(champion),
        challenger_version=_version(challenger),
        champion_score=score_or_nan(m, y, a.raw),
        challenger_score=score_or_nan(m, y, b.raw), improvement=boot.improvement,
        ci_low=boot.ci_low, ci_high=boot.ci_high, p_value=boot.p_value, margin=margin,
        n_boot=boot.n_boot, mcnemar=mc,
        slices=_slices(frame, guarded_slices, y, a, b, m, sign, min_slice_rows,
                       slice_tolerance, n_boot, seed), parts=parts)


# --------------------------------------------------------------------------- decision

Action = Literal["promote", "shadow", "discard"]


@dataclass
class Decision:
    """What to do with a challenger, and why (every check with its outcome)."""

    action: Action
    reasons: list[str]
    checks: dict[str, bool]
    comparison: Comparison | None = None

    @property
    def promote(self) -> bool:
        return self.action == "promote"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "reasons": self.reasons,
                               "checks": self.checks}
        if self.comparison is not None:
            out["comparison"] = self.comparison.to_dict()
        return json_safe(out)


def decide(comparison: Comparison, *, alpha: float = 0.05, slice_tolerance: float = 0.02,
           min_rows: int = 1, on_refuse: Literal["shadow", "discard"] = "shadow") -> Decision:
    """Promote only when the challenger is better by more than the margin, significantly so,
    and not worse than ``slice_tolerance`` on any enforced guarded slice.

    For accuracy, McNemar's exact test must agree too (it tests the decisions themselves).
    """
    c = comparison
    checks: dict[str, bool] = {}
    reasons: list[str] = []
    checks["enough_rows"] = c.n_rows >= min_rows
    if not checks["enough_rows"]:
        reasons.append(f"only {c.n_rows} labelled rows to compare on; {min_rows} needed")
    checks["better_by_margin"] = math.isfinite(c.improvement) and c.improvement > c.margin
    reasons.append(
        f"{c.metric}: challenger {c.challenger_score:.4g} vs champion {c.champion_score:.4g}, "
        f"improvement {c.improvement:+.4g} (95% CI {c.ci_low:+.4g} to {c.ci_high:+.4g}), "
        f"margin {c.margin:g}")
    checks["significant"] = c.p_value < alpha
    reasons.append(f"paired bootstrap p = {c.p_value:.4g} (alpha {alpha:g})")
    if c.mcnemar is not None:
        reasons.append(
            f"McNemar: {c.mcnemar['challenger_only']} rows only the challenger gets right, "
            f"{c.mcnemar['champion_only']} only the champion; p = {c.mcnemar['p_value']:.4g}")
        if c.metric == "accuracy":
            checks["mcnemar_significant"] = c.mcnemar["p_value"] < alpha
    # A guarded slice blocks promotion when it is worse beyond the tolerance and that is not
    # noise of a small slice (its p_worse, from compare(), below alpha).
    worse = [s for s in c.slices if s["enforced"] and s["improvement"] < -slice_tolerance
             and (s.get("p_worse") is None or s["p_worse"] < alpha)]
    noisy = [s for s in c.slices if s["enforced"] and s["improvement"] < -slice_tolerance
             and s not in worse]
    checks["no_worse_slice"] = not worse
    for s in worse:
        reasons.append(f"worse on slice {s['column']}={s['value']} (n={s['n']}): "
                       f"{s['improvement']:+.4g} beyond the tolerance {slice_tolerance:g}"
                       + (f", p = {s['p_worse']:.3g}" if s.get("p_worse") is not None else ""))
    for s in noisy:
        reasons.append(f"slice {s['column']}={s['value']} (n={s['n']}) lower by "
                       f"{-s['improvement']:.4g}, not significantly (p = {s['p_worse']:.3g})")
    action: Action = "promote" if all(checks.values()) else on_refuse
    return Decision(action=action, reasons=reasons, checks=checks, comparison=c)
