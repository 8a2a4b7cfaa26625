"""The evaluation's HTML page (templates/report.html.j2) and its Markdown model card."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright._html import Charts, fmt_num, fmt_pct, write_page
from mlwright.evaluate import plots
from mlwright.run import RunFolder
from mlwright.scoring import greater_is_better, metric_label

if TYPE_CHECKING:
    from mlwright.evaluate.report import Evaluation

__all__ = ["model_card", "render_report"]


def _fmt(value: float | None, name: str = "") -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    if name == "mape":
        return fmt_pct(value)
    return fmt_num(float(value))


def _interval(iv: Any, name: str = "") -> str:
    if iv is None:
        return ""
    if iv.low is None or not np.isfinite(iv.low):
        return "n/a"
    return f"{_fmt(iv.low, name)} \u2013 {_fmt(iv.high, name)}"


def metric_rows(ev: Evaluation) -> list[dict[str, Any]]:
    rows = []
    for name, iv in ev.oof.values.items():
        t = ev.test.values.get(name) if ev.test is not None else None
        rows.append({"name": name, "label": metric_label(name), "headline": name == ev.metric,
                     "oof": _fmt(iv.value, name), "oof_ci": _interval(iv, name),
                     "test": _fmt(t.value, name) if t is not None else "",
                     "test_ci": _interval(t, name) if t is not None else "",
                     "lower_better": not greater_is_better(name)})
    rows.sort(key=lambda r: not r["headline"])
    return rows


def honesty_rows(ev: Evaluation) -> list[dict[str, Any]]:
    return [{"label": metric_label(h.metric), "n_test": h.n_test,
             "cv": _fmt(h.interval.value, h.metric), "range": _interval(h.interval, h.metric),
             "test": "" if h.test_score is None else _fmt(h.test_score, h.metric),
             "inside": h.inside, "notes": "; ".join(h.notes)} for h in ev.honesty]


def _charts(ev: Evaluation, charts: Charts) -> dict[str, Any]:
    p = ev._oof_pred
    out: dict[str, Any] = {"performance": [], "explain": [], "dependence": [], "text": [],
                           "fairness": {}}
    perf = out["performance"]
    if p is not None and p.task != "regression":
        perf.append(("Confusion matrix", charts.add(plots.confusion_matrix(p), height=320),
                     "Rows: actual class; cells: rows and the share of the actual class."))
        perf.append(("ROC curve", charts.add(plots.roc_curve(p), height=320), ""))
        perf.append(("Precision\u2013recall curve", charts.add(plots.pr_curve(p), height=320),
                     "Dotted: the base rate (a model that guesses)."))
        perf.append(("Calibration", charts.add(plots.calibration_curve(p), height=320),
                     "Ten quantile bins; on the diagonal, probabilities mean what they say."))
        if len(p.classes or []) == 2:
            perf.append(("Precision, recall and F1 by threshold",
                         charts.add(plots.threshold_curves(p), height=320), ""))
    elif p is not None:
        perf.append(("Predicted against actual", charts.add(plots.predicted_vs_actual(p),
                                                            height=340), ""))
        perf.append(("Residuals", charts.add(plots.residuals(p), height=340),
                     "Actual minus predicted, against the prediction."))
    if ev.history:
        perf.append(("Search: best score over time", charts.add(plots.search_history(
            ev.history, ev.lineage["params"].get("metric") or ev.metric,
            _greater(ev), ev.trials), height=320), "Each dot is a finished trial."))
    board = ev.leaderboard
    metric_col = ev.lineage["params"].get("metric") or ev.metric
    out["leaderboard"] = (charts.add(plots.leaderboard_chart(board, metric_col),
                                     height=min(480, 80 + 24 * min(15, len(board))))
                          if metric_col in board and not board.empty else "")
    e = ev.explanation
    if e is not None:
        if len(e.importance):
            out["explain"].append(("Mean |contribution| (SHAP)", charts.add(
                plots.importance_bars(e.importance, "mean_abs_contribution",
                                      "mean |contribution|"),
                height=min(520, 80 + 22 * min(20, len(e.importance)))),
                "How far each column moves the prediction, on average."))
        if len(e.permutation):
            out["explain"].append(("Permutation importance", charts.add(
                plots.importance_bars(e.permutation, "importance",
                                      f"loss in {e.metric or ev.metric}", error="std"),
                height=min(520, 80 + 22 * min(20, len(e.permutation)))),
                "How much the score worsens when the column is shuffled."))
        for col, frame in e.dependence.items():
            out["dependence"].append((col, charts.add(plots.dependence(frame, col),
                                                      height=260)))
        for col, frame in e.text_ngrams.items():
            if len(frame):
                out["text"].append((col, charts.add(plots.text_ngram_bars(frame),
                                                    height=min(520, 80 + 20 * min(20,
                                                                                  len(frame))))))
    for f in ev.fairness:
        if f.task == "regression":
            cols = [("mean_prediction", "mean prediction"), ("mean_actual", "mean actual")]
        elif len(ev.classes or []) == 2:
            cols = [("positive_rate", "positive rate"), ("tpr", "true-positive rate"),
                    ("base_rate", "base rate")]
        else:
            cols = [("accuracy", "accuracy"), ("f1_macro", "F1 (macro)")]
        out["fairness"][f.column] = charts.add(plots.fairness_bars(f.groups, cols),
                                               height=300)
    return out


def _greater(ev: Evaluation) -> bool:
    return greater_is_better(ev.lineage["params"].get("metric") or ev.metric)


def _fairness_context(ev: Evaluation) -> list[dict[str, Any]]:
    out = []
    for f in ev.fairness:
        cols = [c for c in f.groups.columns if c not in ("group",)]
        rows = []
        for _, r in f.groups.iterrows():
            rows.append([str(r["group"])] + [
                fmt_num(int(r[c])) if c == "n" else fmt_pct(r[c]) if c == "share" else
                _fmt(r[c]) for c in cols])
        out.append({"column": f.column, "header": ["group", *cols], "rows": rows,
                    "ratios": [{**r, "text": "n/a" if r["value"] is None else
                                f"{r['value']:.2f}"} for r in f.ratios.values()],
                    "notes": f.notes, "threshold": f.threshold})
    return out


def _stats(ev: Evaluation) -> list[dict[str, str]]:
    head = ev.oof.values.get(ev.metric)
    stats = [{"label": f"CV {metric_label(ev.metric)}", "value": _fmt(head.value, ev.metric)
              if head else "n/a", "note": f"95% CI {_interval(head, ev.metric)}" if head
              else ""}]
    if ev.test is not None and ev.metric in ev.test.values:
        t = ev.test.values[ev.metric]
        stats.append({"label": f"Test {metric_label(ev.metric)}",
                      "value": _fmt(t.value, ev.metric),
                      "note": f"{ev.test.n_rows:,} rows, CI {_interval(t, ev.metric)}"})
    if ev.honesty:
        h = ev.honesty[0]
        verdict = ("inside" if h.inside else "OUTSIDE") if h.inside is not None else ""
        stats.append({"label": "CV predicts (test)", "value": _interval(h.interval, h.metric),
                      "note": f"for {h.n_test:,} test rows" + (f" · test {verdict}"
                                                               if verdict else "")})
    d = ev.data_summary
    stats.append({"label": "Training rows", "value": fmt_num(d["n_rows"]),
                  "note": f"{d['validated_rows']:,} validated ({d['validation']})"})
    stats.append({"label": "Features", "value": fmt_num(d["n_features"]), "note": ""})
    shipped = (ev.serving or {}).get("shipped") or {}
    if "p50_ms" in shipped:
        stats.append({"label": "Serving budget",
                      "value": "within" if shipped["within"] else "OVER",
                      "note": serving_text(ev.serving or {})})
    flagged = sum(len(f.flagged) for f in ev.fairness)
    if ev.fairness:
        stats.append({"label": "Fairness flags", "value": str(flagged),
                      "note": f"ratios below {ev.fairness[0].threshold:g}"})
    return stats


def serving_text(limits: dict[str, Any]) -> str:
    """``latency 0.31 ms p50 (budget 0.5 ms), size 2.1 MB (budget 5 MB)`` of the shipped
    model (``TrainResult.limits``)."""
    fig = limits.get("shipped") or {}
    if "p50_ms" not in fig:
        return f"not measured ({fig.get('error', 'no figures')})"
    return ", ".join(
        [f"latency {fig['p50_ms']:.3g} ms p50"
         + (f" (budget {limits['max_latency_ms']:g} ms)" if limits.get("max_latency_ms")
            else ""),
         f"size {fig['size_mb']:.3g} MB"
         + (f" (budget {limits['max_size_mb']:g} MB)" if limits.get("max_size_mb") else "")])


def render_report(ev: Evaluation, path: Path, *, title: str | None = None) -> Path:
    charts = Charts("chart")
    c = _charts(ev, charts)
    d = ev.data_summary
    subtitle = (f"{d['task']} model of {ev.target} · {d['n_rows']:,} rows · "
                + ", ".join(f"{m['family']} {m['weight']:.0%}" for m in ev.members))
    board = ev.leaderboard.head(10).replace({np.nan: None})
    return write_page(
        path, "report.html.j2", title=title or f"Model report: {ev.target}",
        subtitle=subtitle, charts=charts, ev=ev, stats=_stats(ev), metrics=metric_rows(ev),
        honesty=honesty_rows(ev), plots=c, fairness=_fairness_context(ev),
        board_columns=list(board.columns), board_rows=board.to_dict(orient="records"),
        per_class=None if ev.oof.per_class is None else ev.oof.per_class.to_dict(
            orient="records"),
        lineage_rows=_lineage_rows(ev), params=sorted(ev.lineage["params"].items()),
        versions=sorted(ev.lineage["versions"].items()))


def _lineage_rows(ev: Evaluation) -> list[tuple[str, str]]:
    lin = ev.lineage
    rows = [("Data fingerprint", str(lin.get("data_fingerprint") or "n/a")),
            ("Seed", str(lin.get("seed"))),
            ("Training time", f"{lin['training_timings'].get('total', float('nan')):.1f} s"
             if lin.get("training_timings") else "n/a"),
            ("Evaluation time", f"{ev.timings.get('total', 0.0):.1f} s"),
            ("Evaluated at", lin["evaluated_at"])]
    if lin.get("run_folder"):
        rows.append(("Run folder", lin["run_folder"]))
    if lin.get("explained_on"):
        rows.append(("Explained on", lin["explained_on"]))
    return rows


# ---------------------------------------------------------------------------- model card

def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in rows]
    return "\n".join(lines)


def model_card(ev: Evaluation) -> str:
    d = ev.data_summary
    lin = ev.lineage
    out = [f"# Model card: {ev.target} ({d['task']})", ""]
    out += ["## Intended use", "",
            f"Predicts `{ev.target}` ({d['task']}) from {d['n_features']} columns of one "
            f"row, as described by the data contract ({RunFolder.CONTRACT}). Requests are "
            "checked against the contract before prediction. It is meant for rows drawn "
            "from the same population and period as the training data; it has not been "
            "evaluated outside them.", ""]
    out += ["## Training data", "",
            f"- Rows: {d['n_rows']:,}; features: {d['n_features']}; validated rows: "
            f"{d['validated_rows']:,} ({d['validation']}).",
            f"- Data fingerprint: `{lin.get('data_fingerprint')}`."]
    if "classes" in d:
        out.append("- Classes: " + ", ".join(
            f"{c['class']} ({c['share']:.1%})" for c in d["classes"]) + ".")
    if d.get("kinds"):
        out.append("- Column kinds: " + ", ".join(f"{k} {n}" for k, n in d["kinds"].items())
                   + ".")
    out += ["", "## Model", ""]
    out.append("Weighted ensemble: " + ", ".join(
        f"{m['family']} (trial {m['trial']}, weight {m['weight']:.0%}"
        + (f", its {m['folds']} fold models: no time to refit it on all rows)" if "folds" in m
           else ")") for m in ev.members)
        + "." if ev.members else "Single model.")
    if ev.serving is not None:
        dropped = [f"{d['family']} (trial {d['trial']})"
                   for d in ev.serving.get("dropped", []) + ev.serving.get("refit_dropped", [])]
        out.append("Serving budget: " + serving_text(ev.serving)
                   + ", measured on the shipped model through the compiled predictor"
                   + (f"; dropped to meet it: {', '.join(dropped)}" if dropped else "") + ".")
    if ev.threshold is not None:
        out.append(f"Decision threshold on P({ev.classes[1] if ev.classes else 1}): "
                   f"{ev.threshold:.3f}.")
    out += ["", "## Metrics", "",
            "Out-of-fold (cross-validated) predictions, 95% bootstrap intervals"
            + (" and a held-out test table." if ev.test is not None else "."), ""]
    header = ["metric", "CV", "CV 95% interval"] + (["test", "test 95% interval"]
                                                   if ev.test is not None else [])
    rows = [[r["label"] + (" (headline)" if r["headline"] else ""), r["oof"], r["oof_ci"]]
            + ([r["test"], r["test_ci"]] if ev.test is not None else [])
            for r in metric_rows(ev)]
    out += [_md_table(header, rows), ""]
    out += ["## Honesty check", "",
            "The range of test scores cross-validation predicts for a test set of the given "
            "size (bootstrap of the out-of-fold rows at that size, plus the fold-to-fold "
            "spread).", ""]
    h_rows = [[h["label"], f"{h['n_test']:,}", h["cv"], h["range"], h["test"] or "\u2013",
               {True: "yes", False: "**no**", None: "\u2013"}[h["inside"]]]
              for h in honesty_rows(ev)]
    out += [_md_table(["metric", "test rows", "CV", "predicted range", "test", "inside"],
                      h_rows), ""]
    out += ["## Fairness", ""]
    if not ev.fairness:
        out += ["No sensitive columns were given (`--sensitive COL`); fairness was not "
                "assessed.", ""]
    for f in ev.fairness:
        out.append(f"### {f.column}")
        out.append("")
        r_rows = [[r["label"], "n/a" if r["value"] is None else f"{r['value']:.2f}",
                   "**flagged**" if r["flagged"] else "ok", r["explain"]]
                  for r in f.ratios.values()]
        out += [_md_table(["ratio", "value", f"below {f.threshold:g}?", "meaning"], r_rows),
                ""]
        out += ["Groups: " + ", ".join(f"{g} ({n:,})" for g, n in zip(
            f.groups["group"], f.groups["n"], strict=True)) + ".", ""]
        out += [n for n in f.notes] + ([""] if f.notes else [])
    e = ev.explanation
    if e is not None and len(e.importance):
        out += ["## What the model relies on", "",
                "Columns by mean absolute SHAP contribution: " + ", ".join(
                    f"{c} ({v:.3g})" for c, v in zip(e.importance["column"][:8],
                                                     e.importance["mean_abs_contribution"][:8],
                                                     strict=True)) + ".", ""]
    out += ["## Limitations", ""]
    out += [f"- {text}" for text in _limitations(ev)]
    out += ["", "## Lineage", "",
            f"- Seed: {lin.get('seed')}; budget: {lin['params'].get('time_budget')} s; "
            f"metric: {lin['params'].get('metric')}.",
            "- Versions: " + ", ".join(f"{k} {v}" for k, v in lin["versions"].items()) + ".",
            f"- Evaluated at {lin['evaluated_at']}.", ""]
    return "\n".join(out)


def _limitations(ev: Evaluation) -> list[str]:
    d = ev.data_summary
    if d["validation"] == "holdout":
        fit = d.get("fit_rows")
        trained_on = f"the other {fit:,} rows" if fit else "the other rows"
        scored = (f"Scores are estimated on a single holdout of {d['validated_rows']:,} rows; "
                  f"the final model is the one trained on {trained_on} (it was not refit on "
                  "all rows), so the holdout score is its own.")
    else:
        scored = ("Scores are estimated on out-of-fold predictions of models trained on part "
                  "of the rows; the final model was refit on all of them, so it may do "
                  "slightly better.")
    out = [scored,
           "Intervals reflect sampling noise of rows like the training rows, not a change in "
           "the population (drift); monitor the model once it serves."]
    for h in ev.honesty:
        if h.inside is False:
            out.append(f"The test {h.metric} ({_fmt(h.test_score, h.metric)}) fell outside "
                       f"the range CV predicted ({_interval(h.interval, h.metric)}): the "
                       "test rows may differ from the training rows.")
    for f in ev.fairness:
        for name in f.flagged:
            r = f.ratios[name]
            out.append(f"{r['label']} across {f.column} is {r['value']:.2f} (below "
                       f"{f.threshold:g}): lowest for {r['lowest']}, highest for "
                       f"{r['highest']}.")
    if d["validation"] == "holdout":
        out.append("Validated on a single holdout split, not k-fold cross-validation "
                   "(with cv='auto', tables over 15,000 rows get one stratified 20% holdout).")
    out += ev.notes
    return out
