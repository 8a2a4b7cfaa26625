"""The report's charts, as plain Plotly figure dicts (see :mod:`mlwright._html`).

Plain dicts skip Plotly's Python-side validation and import nothing heavy; the page shell
inlines Plotly's JS once. Curves are thinned to a few hundred points and scatter plots to a
sample of rows, so that a report of a 50,000-row table stays small and draws fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwright._html import COLORS, chart_layout
from mlwright.evaluate.scores import Predictions

__all__ = [
    "calibration_curve", "confusion_matrix", "dependence", "fairness_bars", "importance_bars",
    "leaderboard_chart", "pr_curve", "predicted_vs_actual", "residuals", "roc_curve",
    "search_history", "text_ngram_bars", "threshold_curves",
]

PALETTE = ["#4f46e5", "#0ea5e9", "#f59e0b", "#16a34a", "#dc2626", "#9333ea", "#0d9488",
           "#db2777", "#65a30d", "#ea580c"]
Figure = dict[str, Any]


def _thin(*arrays: np.ndarray, limit: int = 400) -> list[list[float]]:
    n = len(arrays[0])
    idx: np.ndarray | list[int] = \
        np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int)) if n else []
    return [np.round(np.asarray(a, dtype=float)[idx], 5).tolist() for a in arrays]


def _sample_rows(n: int, limit: int, seed: int = 0) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _legend() -> dict[str, Any]:
    return {"showlegend": True, "legend": {"orientation": "h", "y": -0.22, "x": 0}}


def _one_vs_rest(p: Predictions) -> list[tuple[str, np.ndarray, np.ndarray]]:
    assert p.proba is not None and p.classes is not None
    if len(p.classes) == 2:
        return [(str(p.classes[1]), (p.y == 1), p.proba[:, 1])]
    return [(str(c), (p.y == i), p.proba[:, i]) for i, c in enumerate(p.classes)
            if 0 < (p.y == i).sum() < len(p.y)]


def confusion_matrix(p: Predictions) -> Figure:
    assert p.classes is not None
    k = len(p.classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (p.y, p.pred), 1)
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    labels = [str(c) for c in p.classes]
    text = [[f"{counts[i, j]:,}<br>{row_share[i, j]:.0%}" for j in range(k)] for i in range(k)]
    trace = {"type": "heatmap", "z": row_share.round(4).tolist(), "x": labels, "y": labels,
             "text": text, "texttemplate": "%{text}", "colorscale": "Blues", "zmin": 0,
             "zmax": 1, "showscale": False, "customdata": counts.tolist(),
             "hovertemplate": "actual %{y}, predicted %{x}: %{customdata:,} rows"
                              "<extra></extra>"}
    return {"data": [trace], "layout": chart_layout(
        xaxis={"title": {"text": "predicted"}, "type": "category", "side": "bottom"},
        yaxis={"title": {"text": "actual"}, "type": "category", "autorange": "reversed"})}


def roc_curve(p: Predictions) -> Figure:
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc

    traces = [{"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "chance",
               "line": {"color": COLORS["muted"], "dash": "dot", "width": 1},
               "hoverinfo": "skip"}]
    for i, (name, pos, score) in enumerate(_one_vs_rest(p)):
        fpr, tpr, _ = sk_roc(pos, score)
        x, y = _thin(fpr, tpr)
        auc = roc_auc_score(pos, score)
        traces.append({"type": "scatter", "mode": "lines", "x": x, "y": y,
                       "name": f"{name} (AUC {auc:.3f})",
                       "line": {"color": PALETTE[i % len(PALETTE)], "width": 2},
                       "hovertemplate": "FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>"})
    return {"data": traces, "layout": chart_layout(
        **_legend(), xaxis={"title": {"text": "false positive rate"}, "range": [0, 1]},
        yaxis={"title": {"text": "true positive rate"}, "range": [0, 1.02]})}


def pr_curve(p: Predictions) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    traces: list[dict[str, Any]] = []
    for i, (name, pos, score) in enumerate(_one_vs_rest(p)):
        precision, recall, _ = precision_recall_curve(pos, score)
        x, y = _thin(recall[::-1], precision[::-1])
        ap = average_precision_score(pos, score)
        color = PALETTE[i % len(PALETTE)]
        traces.append({"type": "scatter", "mode": "lines", "x": x, "y": y,
                       "name": f"{name} (AP {ap:.3f})", "line": {"color": color, "width": 2,
                                                                 "shape": "hv"},
                       "hovertemplate": "recall %{x:.3f}, precision %{y:.3f}<extra></extra>"})
        base = float(pos.mean())
        traces.append({"type": "scatter", "mode": "lines", "x": [0, 1], "y": [base, base],
                       "name": f"{name} base rate", "showlegend": False, "hoverinfo": "skip",
                       "line": {"color": color, "dash": "dot", "width": 1}})
    return {"data": traces, "layout": chart_layout(
        **_legend(), xaxis={"title": {"text": "recall"}, "range": [0, 1]},
        yaxis={"title": {"text": "precision"}, "range": [0, 1.02]})}


def calibration_curve(p: Predictions, n_bins: int = 10) -> Figure:
    """Mean predicted probability against the observed frequency, in quantile bins
    (binary: the positive class; multiclass: the top class's probability vs accuracy)."""
    assert p.proba is not None and p.classes is not None
    if len(p.classes) == 2:
        score, hit = p.proba[:, 1], (p.y == 1).astype(float)
        x_title, y_title = f"predicted P({p.classes[1]})", "observed share"
    else:
        score, hit = p.proba.max(axis=1), (p.proba.argmax(axis=1) == p.y).astype(float)
        x_title, y_title = "confidence (top class probability)", "accuracy"
    edges = np.unique(np.quantile(score, np.linspace(0, 1, n_bins + 1)))
    bins = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, max(0, len(edges) - 2))
    frame = pd.DataFrame({"bin": bins, "score": score, "hit": hit}).groupby("bin").agg(
        predicted=("score", "mean"), observed=("hit", "mean"), n=("hit", "size"))
    traces = [
        {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "perfect",
         "line": {"color": COLORS["muted"], "dash": "dot", "width": 1}, "hoverinfo": "skip"},
        {"type": "scatter", "mode": "lines+markers", "name": "model",
         "x": frame["predicted"].round(4).tolist(), "y": frame["observed"].round(4).tolist(),
         "customdata": frame["n"].tolist(), "line": {"color": COLORS["primary"], "width": 2},
         "hovertemplate": "predicted %{x:.3f}, observed %{y:.3f} (%{customdata:,} rows)"
                          "<extra></extra>"},
    ]
    return {"data": traces, "layout": chart_layout(
        xaxis={"title": {"text": x_title}, "range": [0, 1]},
        yaxis={"title": {"text": y_title}, "range": [0, 1.02]})}


def threshold_curves(p: Predictions) -> Figure:
    """Precision, recall and F1 of the positive class at every decision threshold."""
    assert p.proba is not None
    score, pos = p.proba[:, 1], p.y == 1
    grid = np.linspace(0.0, 1.0, 101)
    order = np.sort(score)
    # Rows predicted positive at threshold t: score >= t.
    predicted = len(score) - np.searchsorted(order, grid, side="left")
    pos_sorted = np.sort(score[pos])
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, grid, side="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
        recall = tp / max(1, int(pos.sum()))
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
    traces: list[dict[str, Any]] = []
    for name, values, color in (("precision", precision, PALETTE[0]),
                                ("recall", recall, PALETTE[1]), ("F1", f1, PALETTE[2])):
        traces.append({"type": "scatter", "mode": "lines", "x": grid.round(3).tolist(),
                       "y": [None if not np.isfinite(v) else round(float(v), 4)
                             for v in values],
                       "name": name, "line": {"color": color, "width": 2},
                       "hovertemplate": f"threshold %{{x:.2f}}: {name} %{{y:.3f}}"
                                        "<extra></extra>"})
    t = p.threshold if p.threshold is not None else 0.5
    layout = chart_layout(**_legend(), xaxis={"title": {"text": "decision threshold"},
                                              "range": [0, 1]},
                          yaxis={"range": [0, 1.02]},
                          shapes=[{"type": "line", "x0": t, "x1": t, "y0": 0, "y1": 1,
                                   "yref": "paper", "line": {"color": COLORS["bad"],
                                                             "dash": "dash", "width": 1}}],
                          annotations=[{"x": t, "y": 1, "yref": "paper", "text":
                                        f"model's threshold {t:.2f}", "showarrow": False,
                                        "xanchor": "left", "yanchor": "bottom",
                                        "font": {"size": 11, "color": COLORS["bad"]}}])
    return {"data": traces, "layout": layout}


def residuals(p: Predictions, limit: int = 2000) -> Figure:
    rows = _sample_rows(len(p), limit)
    pred, res = p.pred[rows], (p.y - p.pred)[rows]
    trace = {"type": "scattergl", "mode": "markers", "x": np.round(pred, 4).tolist(),
             "y": np.round(res, 4).tolist(), "marker": {"color": COLORS["primary"],
                                                        "size": 4, "opacity": 0.5},
             "hovertemplate": "predicted %{x:.4g}, residual %{y:.4g}<extra></extra>"}
    return {"data": [trace], "layout": chart_layout(
        xaxis={"title": {"text": "predicted"}},
        yaxis={"title": {"text": "actual - predicted"}, "zeroline": True,
               "zerolinecolor": COLORS["muted"]})}


def predicted_vs_actual(p: Predictions, limit: int = 2000) -> Figure:
    rows = _sample_rows(len(p), limit)
    lo = float(min(p.y.min(), p.pred.min()))
    hi = float(max(p.y.max(), p.pred.max()))
    traces = [
        {"type": "scatter", "mode": "lines", "x": [lo, hi], "y": [lo, hi], "name": "perfect",
         "line": {"color": COLORS["muted"], "dash": "dot", "width": 1}, "hoverinfo": "skip"},
        {"type": "scattergl", "mode": "markers", "x": np.round(p.y[rows], 4).tolist(),
         "y": np.round(p.pred[rows], 4).tolist(), "name": "rows",
         "marker": {"color": COLORS["primary"], "size": 4, "opacity": 0.5},
         "hovertemplate": "actual %{x:.4g}, predicted %{y:.4g}<extra></extra>"},
    ]
    return {"data": traces, "layout": chart_layout(
        xaxis={"title": {"text": "actual"}}, yaxis={"title": {"text": "predicted"}})}


def search_history(history: list[tuple[float, float]], metric: str, greater_is_better: bool,
                   trials: list[tuple[float, float, str]] | None = None) -> Figure:
    """Best score so far against seconds since the start, and each finished trial."""
    sign = -1.0 if greater_is_better else 1.0  # history holds losses
    traces: list[dict[str, Any]] = []
    if trials:
        for i, family in enumerate(dict.fromkeys(f for _, _, f in trials)):
            pts = [(t, s) for t, s, f in trials if f == family]
            traces.append({"type": "scatter", "mode": "markers", "name": family,
                           "x": [round(t, 2) for t, _ in pts], "y": [s for _, s in pts],
                           "marker": {"color": PALETTE[i % len(PALETTE)], "size": 7,
                                      "opacity": 0.7},
                           "hovertemplate": family + ": %{y:.5g} at %{x:.1f} s"
                                                     "<extra></extra>"})
    traces.append({"type": "scatter", "mode": "lines", "name": "best so far",
                   "x": [round(t, 2) for t, _ in history],
                   "y": [sign * loss for _, loss in history],
                   "line": {"color": COLORS["text"], "width": 2, "shape": "hv"},
                   "hovertemplate": "best %{y:.5g} at %{x:.1f} s<extra></extra>"})
    return {"data": traces, "layout": chart_layout(
        **_legend(), xaxis={"title": {"text": "seconds since start"}},
        yaxis={"title": {"text": metric}})}


def leaderboard_chart(board: pd.DataFrame, metric: str, limit: int = 15) -> Figure:
    """The best trials' CV scores (± fold std), ensemble members highlighted."""
    top = board.dropna(subset=[metric]).head(limit).iloc[::-1]
    labels = [f"#{int(t)} {f}" for t, f in zip(top["trial"], top["family"], strict=True)]
    weight = top["weight"].fillna(0).to_numpy()
    colors = [COLORS["primary"] if w > 0 else COLORS["muted"] for w in weight]
    std = top["std"].fillna(0).round(5).tolist() if "std" in top else None
    trace = {"type": "bar", "orientation": "h", "y": labels,
             "x": top[metric].round(6).tolist(), "marker": {"color": colors},
             "customdata": [f"{w:.0%}" if w > 0 else "not in the ensemble" for w in weight],
             "hovertemplate": "%{y}: %{x:.5g} (%{customdata})<extra></extra>"}
    if std is not None:
        trace["error_x"] = {"type": "data", "array": std, "color": COLORS["text"],
                            "thickness": 1}
    lo, hi = _bar_range(top[metric].to_numpy(dtype=float))
    pad = max((hi - lo) * 0.3, abs(hi) * 0.002, 1e-6)
    off = (top[metric] < lo - pad) | (top[metric] > hi + pad)
    if off.any():  # a far-off trial (log loss 16 beside 0.4) keeps its value as text
        trace["text"] = [f"{v:.4g} (off scale)" if o else "" for v, o in
                         zip(top[metric], off, strict=True)]
        trace["textposition"] = "inside"
    return {"data": [trace], "layout": chart_layout(
        xaxis={"title": {"text": f"{metric} (CV)"}, "range": [lo - pad, hi + pad]},
        yaxis={"type": "category", "tickfont": {"size": 11}}, margin={"l": 8})}


def _bar_range(values: np.ndarray) -> tuple[float, float]:
    """The range of the bars worth comparing: values more than 10 median absolute
    deviations (and 5%) from the median are left off the axis, so one failed trial (log loss
    16 beside 0.4) cannot squash the others; robust with as few as three trials."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    fence = max(10 * mad, 0.05 * abs(median), 1e-9)
    inside = values[np.abs(values - median) <= fence]
    inside = inside if len(inside) else values
    return float(inside.min()), float(inside.max())


def importance_bars(frame: pd.DataFrame, value: str, label: str, limit: int = 20,
                    error: str | None = None) -> Figure:
    top = frame.head(limit).iloc[::-1]
    trace = {"type": "bar", "orientation": "h", "y": top["column"].astype(str).tolist(),
             "x": top[value].astype(float).round(6).tolist(),
             "marker": {"color": COLORS["primary"]},
             "hovertemplate": "%{y}: %{x:.4g}<extra></extra>"}
    if error is not None and error in top:
        trace["error_x"] = {"type": "data", "array": top[error].fillna(0).round(6).tolist(),
                            "color": COLORS["text"], "thickness": 1}
    return {"data": [trace], "layout": chart_layout(
        xaxis={"title": {"text": label}}, yaxis={"type": "category", "tickfont": {"size": 11}},
        margin={"l": 8})}


def dependence(frame: pd.DataFrame, column: str) -> Figure:
    """One column's contributions against its values (categories as a box per value)."""
    values = frame["value"]
    contrib = frame["contribution"].astype(float).round(5)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        # Dates on a date axis, in time order; midnight-only dates without "00:00:00".
        order = np.argsort(values.to_numpy(), kind="stable")
        when = values.iloc[order]
        midnight = bool((when.dropna() == when.dropna().dt.normalize()).all())
        text = when.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S")
        return {"data": [{
            "type": "scattergl", "mode": "markers", "x": text.tolist(),
            "y": contrib.iloc[order].tolist(),
            "marker": {"color": COLORS["primary"], "size": 4, "opacity": 0.5},
            "hovertemplate": column + " %{x}: %{y:.4g}<extra></extra>"}],
            "layout": chart_layout(xaxis={"title": {"text": column}, "type": "date"},
                                   yaxis={"title": {"text": "contribution"}, "zeroline": True,
                                          "zerolinecolor": COLORS["muted"]})}
    if numeric:
        trace: dict[str, Any] = {
            "type": "scattergl", "mode": "markers", "x": values.astype(float).tolist(),
            "y": contrib.tolist(), "marker": {"color": COLORS["primary"], "size": 4,
                                              "opacity": 0.5},
            "hovertemplate": column + " %{x:.4g}: %{y:.4g}<extra></extra>"}
        xaxis: dict[str, Any] = {"title": {"text": column}}
    else:
        labels = values.astype(object).map(lambda v: "(missing)" if v is None or v != v
                                           else str(v))
        top = labels.value_counts().index[:15]
        keep = labels.isin(top)
        trace = {"type": "box", "x": labels[keep].tolist(), "y": contrib[keep].tolist(),
                 "marker": {"color": COLORS["primary"]}, "boxpoints": False}
        xaxis = {"title": {"text": column}, "type": "category"}
    return {"data": [trace], "layout": chart_layout(
        xaxis=xaxis, yaxis={"title": {"text": "contribution"}, "zeroline": True,
                            "zerolinecolor": COLORS["muted"]})}


def text_ngram_bars(frame: pd.DataFrame, limit: int = 20) -> Figure:
    top = frame.head(limit).iloc[::-1]
    weights = top["weight"].astype(float).round(5)
    label = top["ngram"].astype(str)
    if "class" in top:
        label = label + " → " + top["class"].astype(str)
    trace = {"type": "bar", "orientation": "h", "y": label.tolist(), "x": weights.tolist(),
             "marker": {"color": [COLORS["primary"] if w >= 0 else COLORS["bad"]
                                  for w in weights]},
             "hovertemplate": "%{y}: %{x:.4g}<extra></extra>"}
    return {"data": [trace], "layout": chart_layout(
        xaxis={"title": {"text": "weight"}}, yaxis={"type": "category",
                                                    "tickfont": {"size": 11}},
        margin={"l": 8})}


def fairness_bars(groups: pd.DataFrame, columns: list[tuple[str, str]]) -> Figure:
    """Grouped bars: one bar per group for each (column, label) metric."""
    traces: list[dict[str, Any]] = []
    names = groups["group"].astype(str).tolist()
    for i, (col, label) in enumerate(columns):
        if col not in groups:
            continue
        traces.append({"type": "bar", "name": label, "x": names,
                       "y": [None if v != v else round(float(v), 4) for v in groups[col]],
                       "marker": {"color": PALETTE[i % len(PALETTE)]},
                       "hovertemplate": f"%{{x}}: {label} %{{y:.3g}}<extra></extra>"})
    return {"data": traces, "layout": chart_layout(
        **_legend(), barmode="group", xaxis={"type": "category"})}
