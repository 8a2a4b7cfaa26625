"""``mlwright report``: rebuild a run's HTML report and model card (issue 4)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mlwright.cli._common import console
from mlwright.run import RunFolder, TrainResult

TestOpt = Annotated[str | None, typer.Option(
    "--test", help="A held-out table (file or SQLAlchemy URL) with the target, scored too.")]
SensitiveOpt = Annotated[list[str] | None, typer.Option(
    "--sensitive", help="Report fairness slices for COL (repeat for several columns).")]


def _fairness_threshold() -> float:
    """``evaluate.fairness_threshold`` of ./mlwright.toml when there is one."""
    from mlwright.config import CONFIG_FILE, EvaluateConfig, load_config

    if Path(CONFIG_FILE).exists():
        return load_config(CONFIG_FILE).evaluate.fairness_threshold
    return EvaluateConfig().fairness_threshold


def write_report(result: TrainResult | Path, out: Path, *, data: Any = None,
                 test: Any = None, sensitive: list[str] | None = None,
                 explain_seconds: float = 6.0) -> dict[str, Path]:
    """Evaluate ``result`` (a TrainResult or a run folder) and write the report files
    (``test``: a table's path or URL, or a DataFrame; ``explain_seconds``: the time the
    explanations may take), with a status line while it works; prints where they went and
    how long it took."""
    from mlwright.evaluate.report import evaluate

    started = time.monotonic()
    with console.status("[bold]Evaluating: metrics, intervals, explanations, report…"):
        test_df = test  # a table path or URL, or a table already read
        if isinstance(test, str):
            from mlwright.data.sources import load

            test_df = load(test)
        evaluation = evaluate(result, data=data, test=test_df, sensitive=sensitive or [],
                              fairness_threshold=_fairness_threshold(),
                              explain_seconds=explain_seconds)
        paths = evaluation.write(out)
    for h in evaluation.honesty[:1]:
        verdict = {True: "[green]inside[/]", False: "[red]outside[/]", None: ""}[h.inside]
        line = (f"CV predicts {h.metric} in [{h.interval.low:.4g}, {h.interval.high:.4g}] "
                f"on {h.n_test:,} test rows")
        if h.test_score is not None:
            line += f"; test {h.test_score:.4g}: {verdict}"
        else:  # no test table: the range a future test set of that size should land in
            line += " (--test TABLE checks it)"
        console.print(line)
    for f in evaluation.fairness:
        for name in f.flagged:
            r = f.ratios[name]
            console.print(f"[yellow]Fairness[/]: {r['label']} by {f.column} is "
                          f"{r['value']:.2f} (< {f.threshold:g})")
    # soft_wrap: a long path must stay one piece of text a user can copy.
    console.print(f"Report: [bold]{paths['report']}[/] ({RunFolder.MODEL_CARD}, "
                  f"{RunFolder.EVALUATION}) "
                  f"in {time.monotonic() - started:.1f} s", soft_wrap=True)
    return paths


def report(
    run: Annotated[Path, typer.Argument(help="A run folder written by 'mlwright train'.")],
    test: TestOpt = None,
    sensitive: SensitiveOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help=f"Folder for {', '.join(RunFolder.REPORT_FILES)} (default: "
        f"the run folder).")] = None,
) -> None:
    """Rebuild a run's HTML report, model card and evaluation JSON from its folder."""
    write_report(run, out or run, test=test, sensitive=sensitive)


def register(app: typer.Typer) -> None:
    app.command()(report)
