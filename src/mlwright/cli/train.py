"""``mlwright train``: a live leaderboard and a progress bar while the search runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlwright.cli._common import (
    ClusterOpt,
    DataArg,
    DelimiterOpt,
    EncodingOpt,
    QueryOpt,
    SampleOpt,
    StoreOpt,
    TableOpt,
    TargetOpt,
    cluster_address,
    console,
    load_table,
)
from mlwright.cli.report import SensitiveOpt, TestOpt
from mlwright.run import RunFolder


def _board_table(board: Any, metric: str, limit: int = 10) -> Table:
    table = Table(title="Leaderboard (out-of-fold)", title_justify="left", expand=False)
    for col in ("#", "family", metric, "±", "s", "weight", "status"):
        table.add_column(col, justify="right" if col not in ("family", "status") else "left")
    not_run = board["status"] == "not run"
    for _, row in board[~not_run].head(limit).iterrows():
        score = row.get(metric)
        rows = row.get("rows", 1.0)
        table.add_row(str(row["trial"]), row["family"],
                      "" if score != score else f"{score:.5g}",
                      "" if row["std"] != row["std"] else f"{row['std']:.3g}",
                      f"{row['seconds']:.1f}",
                      f"{row['weight']:.2f}" if row["weight"] else "",
                      row["status"] + (f" ({rows:.0%} rows)" if rows == rows and rows < 1
                                       else ""))
    # Families that had no trial are always listed, with why (the leaderboard's note).
    for _, row in board[not_run].iterrows():
        table.add_row("-", row["family"], "", "", "", "", f"not run: {row['note']}")
    return table


def _trim_text(trim: dict[str, Any], metric: str) -> str:
    if not trim["dropped"]:
        return (f"--trim: every member stays (each removal costs more than the CV noise, "
                f"{trim['noise']:.3g} {metric} from {trim['noise_from']}).")
    dropped = ", ".join(f"{d['family']} (trial {d['trial']}, weight {d['weight']:.2f})"
                        for d in trim["dropped"])
    line = (f"--trim: dropped {dropped}: CV {metric} {trim['cv_before']:.5g} -> "
            f"{trim['cv_after']:.5g}, within the noise {trim['noise']:.3g} "
            f"(standard error over the {trim['noise_from']}).")
    measured = trim.get("measured", {})
    if "full" in measured and "trimmed" in measured:
        full, kept = measured["full"], measured["trimmed"]
        line += (f"\n  single-row p50 {full['p50_us']:.0f} -> {kept['p50_us']:.0f} µs, size "
                 f"{full['size_mb']:.2f} -> {kept['size_mb']:.2f} MB (measured on "
                 f"{measured['on']})")
    elif measured.get("error"):
        line += f"\n  latency not measured: {measured['error']}"
    return line


def _limits_text(limits: dict[str, Any]) -> str:
    """The serving budget: the shipped model's measured figures against it, then what was
    left out or dropped to meet it (on fold-0 stand-ins)."""
    def against(fig: dict[str, Any]) -> str:
        parts = [f"latency {fig['p50_ms']:.3g} ms p50"
                 + (f" (budget {limits['max_latency_ms']:g} ms)"
                    if limits["max_latency_ms"] else ""),
                 f"size {fig['size_mb']:.3g} MB"
                 + (f" (budget {limits['max_size_mb']:g} MB)" if limits["max_size_mb"] else "")]
        return ", ".join(parts)

    shipped = limits.get("shipped") or {}
    if "p50_ms" in shipped:
        mark = "" if shipped["within"] else "[yellow]over the budget[/]: "
        line = f"Serving budget: {mark}{against(shipped)}, measured on the shipped model."
        if not shipped["within"]:
            line += (" Its fold-0 stand-in measured " + against(limits["after"]) + "; the "
                     "refit on all rows grew other trees, and one member was left to drop; "
                     "training with a tighter budget leaves room for that.")
    else:
        line = (f"Serving budget: the shipped model was not measured "
                f"({shipped.get('error', 'no figures')}); its fold-0 stand-in measured "
                f"{against(limits['after'])}.")
    if limits["excluded"]:
        line += "\n  left out of the ensemble: " + ", ".join(
            f"{e['family']} (trial {e['trial']}, "
            + (f"{e['p50_ms']:.3g} ms, {e['size_mb']:.3g} MB " if "p50_ms" in e else "")
            + f"{e['why']})" for e in limits["excluded"])
    if limits["dropped"]:
        line += ("\n  dropped to meet it: " + ", ".join(
            f"{d['family']} (trial {d['trial']}, weight {d['weight']:.2f}; the ensemble then "
            f"{d['p50_ms']:.3g} ms, {d['size_mb']:.3g} MB, CV {d['cv_after']:.5g})"
            for d in limits["dropped"])
            + f" (ensemble before: {against(limits['before'])}, CV {limits['cv_before']:.5g})")
    if limits.get("refit_dropped"):
        line += ("\n  dropped after the refit (its model measured " + against(limits["refit"])
                 + "): " + ", ".join(
                     f"{d['family']} (trial {d['trial']}, weight {d['weight']:.2f}; the model "
                     f"then {d['p50_ms']:.3g} ms, {d['size_mb']:.3g} MB, CV {d['cv_after']:.5g})"
                     for d in limits["refit_dropped"]))
    line += (f"\n  measuring took {limits['measuring_seconds']:.1f} s (not in the time "
             f"budget)" + (f"; candidates alone measured for at most "
                           f"{limits['measure_cap_seconds']:g} s, the rest not used"
                           if limits["capped"] else ""))
    return line


def _distill_table(d: dict[str, Any]) -> Table:
    table = Table(title=f"Teacher and student (CV {d['metric']}; 95% range for "
                  f"{d['n_test']:,} new rows)", title_justify="left", expand=False)
    for col in ("model", "members", f"CV {d['metric']}", "95% range", "p50 µs", "MB", "ships"):
        table.add_column(col, justify="left" if col in ("model", "ships") else "right")
    for name in ("teacher", "student"):
        e = d[name]
        rng = e["interval"]
        table.add_row(name, str(e["members"]), f"{e['cv']:.5g}",
                      "" if not rng or rng["low"] is None else
                      f"[{rng['low']:.4g}, {rng['high']:.4g}]",
                      f"{e['p50_us']:.0f}", f"{e['size_mb']:.2f}",
                      "yes" if d["shipped"] == name else "")
    inside = d.get("student_inside_teacher_interval")
    verdict = {True: "inside", False: "outside", None: "not comparable"}[inside]
    table.caption = (f"student CV {verdict} the teacher's range; latency ratio "
                     f"{d['latency_ratio']:.1f}x; distillation took "
                     f"{d['student']['seconds']:.1f} s after the budget")
    return table


def _outside_check(folder: Path) -> str | None:
    """Why the run must not become champion, or None: its test score fell outside the
    range its CV predicted (a model other than the evaluated one, or a test table unlike
    the training data)."""
    import json

    path = folder / RunFolder.EVALUATION
    if not path.exists():
        return None
    for h in json.loads(path.read_text()).get("honesty", [])[:1]:
        if h.get("inside") is False:
            low, high = h["interval"]["low"], h["interval"]["high"]
            return (f"its test {h['metric']} ({h['test_score']:.4g}) fell outside the range "
                    f"its CV predicted ([{low:.4g}, {high:.4g}])")
    return None


def _prefetch() -> None:
    """Import what the report needs while the search runs: numba and the TreeSHAP kernels
    for its tree explanations (a busy machine multiplies import times: importing shap there
    once took hpc_jobs' 3 s of explanations to 15.8 s). MLflow's imports are a process of
    their own (:mod:`mlwright.cli.register_worker`)."""
    import contextlib

    # At the search's own priority: a lower one starves the thread on a busy machine while
    # it holds the GIL, and the whole process waits for it (hpc_jobs --budget 30 beside a
    # second training, prefetching at nice 19: the report's test scores took 4.6 s instead
    # of 0.9, its 3 s of explanations 13.5 s).
    with contextlib.suppress(Exception):  # the report explains without it, or says why
        import mlwright.evaluate.explain._treeshap_kernel  # noqa: F401


#: Training budgets (s) from which numba is imported during the search. Below, its CPU and
#: GIL are too large a share of it: at --budget 5 the opening trial lost to imports in a
#: thread (trump_tweet_source's test log loss 0.27-0.31 without, 0.41-0.42 with, even at the
#: lowest priority; hpc_jobs' 0.42 -> 0.56 at normal priority), so short runs import it
#: after training instead.
PREFETCH_FROM = 20.0


#: The least time the report explains for (s): a report still explains the model.
_EXPLAIN_FLOOR = 0.5


def explain_seconds_for(budget: float) -> float:
    """The report's time for explanations after a --budget training: a tenth of the budget,
    0.5-6 s (a fixed 6 s more than doubled a 5 s command)."""
    return min(6.0, max(_EXPLAIN_FLOOR, 0.1 * budget))


def _report_and_registration_seconds(register: bool) -> float:
    """The work after training other than explanations: about 1.5 s for the report's scores
    and files and 1 s for registration (measured on hpc_jobs with MLflow opened during the
    search)."""
    return 1.5 + (1.0 if register else 0.0)


def after_training_seconds(budget: float, *, register: bool) -> float:
    """What --budget keeps for the work after training, so that the command, not only the
    search, takes the time asked for: the explanations, the report and registration, at
    most a fifth of the budget (the search needs the rest)."""
    need = explain_seconds_for(budget) + _report_and_registration_seconds(register)
    return min(need, 0.2 * budget)


def explain_seconds_left(budget: float, elapsed: float, *, register: bool) -> float:
    """The explanations' time once training took ``elapsed`` seconds of ``budget``: their
    share of it, less what training overran. A busy machine stretches the search's last
    trial and the refit (trump_tweet_source at --budget 30 beside a second training: 27.8 s
    of its 24.5, then 9.1 s after it, 36.9 s in all); the report then explains within the
    command's deadline instead of adding the overrun to it, never for less than
    _EXPLAIN_FLOOR."""
    rest = budget - elapsed - _report_and_registration_seconds(register)
    return min(explain_seconds_for(budget), max(_EXPLAIN_FLOOR, rest))


def _check_report_arguments(df: Any, target: str, test: str | None,
                            sensitive: list[str] | None) -> Any:
    """The report's arguments, checked before the first trial (a typo must not cost the
    whole budget); returns the --test table, read once. The target itself is checked by
    training, before its search."""
    from mlwright.exceptions import ColumnNotFoundError

    for col in sensitive or []:
        if col not in df.columns:
            raise ColumnNotFoundError(col, df.columns, role="sensitive column")
    if test is None:
        return None
    test_df = load_table(test, table=None, query=None, sample=None)
    if target not in test_df.columns:
        error = ColumnNotFoundError(target, test_df.columns, role="target column")
        error.args = (f"--test {test}: {error} The test table needs the target to be "
                      f"scored.",)
        raise error
    return test_df


def train(
    data: DataArg,
    target: TargetOpt,
    budget: Annotated[float, typer.Option("--budget", "-b", min=1,
                                          help="Seconds for the whole command: search, "
                                          "ensembling, refit, the report and registration.")
                      ] = 60.0,
    metric: Annotated[str | None, typer.Option(help="Metric (default: roc_auc, log_loss or "
                                               "rmse by task), or a scikit-learn scorer.")
                      ] = None,
    task: Annotated[str | None, typer.Option(help="binary, multiclass or regression "
                                             "(inferred by default).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of splits, sampler and models.")] = 0,
    trials: Annotated[int | None, typer.Option("--trials", min=1,
                                               help="Run N trials, each to the end whatever the "
                                               "budget (reproducible with --seed).")
                      ] = None,
    search: Annotated[str, typer.Option(help="bayes (Optuna TPE), random or grid.")
                      ] = "bayes",
    families: Annotated[str | None, typer.Option(
        help="Comma-separated model families, e.g. lightgbm,linear,catboost.")] = None,
    cv: Annotated[str, typer.Option(help="auto, a number of folds, or holdout.")] = "auto",
    groups: Annotated[str | None, typer.Option("--groups", help="Group-aware CV on COL.")
                      ] = None,
    time_col: Annotated[str | None, typer.Option("--time", help="Time-ordered CV on COL.")
                        ] = None,
    class_weight: Annotated[str | None, typer.Option(help="None or balanced.")] = None,
    threshold: Annotated[str | None, typer.Option(
        help="Binary decision threshold: a probability, f1 or balanced_accuracy.")] = None,
    n_jobs: Annotated[int, typer.Option(help="Cores to use (-1: all).")] = -1,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the model and its "
                                      "evidence.")] = Path("runs/latest"),
    table: TableOpt = None,
    query: QueryOpt = None,
    sample: SampleOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    test: TestOpt = None,
    sensitive: SensitiveOpt = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Registered model name (default: mlwright.toml's project, else the "
        "data file's name).")] = None,
    store: StoreOpt = None,
    no_register: Annotated[bool, typer.Option(
        "--no-register", help="Do not log the run to MLflow nor register the model.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Register as champion (when there is none) even if the --test score "
        "falls outside the range the CV predicted.")] = False,
    cluster: ClusterOpt = None,
    sample_rows: Annotated[int | None, typer.Option(
        "--sample-rows", min=100, help="Train out of core on a Parquet dataset (a file, a "
        "folder or a glob): search on a sample of N rows, refit LightGBM on all rows with "
        "Dask (default: so, with 100,000 rows, when the dataset is larger than a quarter of "
        "this machine's memory).")] = None,
    holdout_rows: Annotated[int, typer.Option(
        "--holdout-rows", min=1, help="Out of core: rows held out of the refit to score "
                                      "it.")] = 50_000,
    trim: Annotated[bool, typer.Option(
        "--trim", help="Drop ensemble members while the CV score stays within its noise "
        "(standard error over the folds); prints what was dropped.")] = False,
    distill: Annotated[bool, typer.Option(
        "--distill", help="Also train one LightGBM student of the model (after the budget) "
        "and print both CV ranges and single-row latencies; the teacher ships, the student "
        "is saved beside it as student.joblib.")] = False,
    ship_student: Annotated[bool, typer.Option(
        "--ship-student", help="With --distill: the student ships (model.joblib, its CV "
        "and report), the teacher is saved beside it as teacher.joblib.")] = False,
    max_latency_ms: Annotated[float | None, typer.Option(
        "--max-latency-ms", metavar="MS", help="Serving budget: single-record p50 latency in "
        "milliseconds, measured through the compiled predictor (as the server predicts), not "
        "estimated. Trials over it alone stay out of the ensemble; members are dropped while "
        "the ensemble is over it (after --trim), and again while the refit model is. Fails "
        "before saving anything when no model alone fits.")] = None,
    max_size_mb: Annotated[float | None, typer.Option(
        "--max-size-mb", metavar="MB", help="Serving budget: model size (model.joblib) in MB, "
        "measured; as --max-latency-ms.")] = None,
) -> None:
    """Train the best model a time budget allows: search, ensemble, refit; then save it."""
    from mlwright.api import train as train_api

    started = time.monotonic()
    if ship_student and not distill:
        raise typer.BadParameter("--ship-student ships the student of --distill; add "
                                 "--distill.", param_hint="--ship-student")
    from mlwright.exceptions import ConfigError
    from mlwright.search.limits import Limits

    try:
        Limits.of(max_latency_ms, max_size_mb, python=False)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-latency-ms / --max-size-mb"
                                 ) from None
    address = cluster_address(cluster)
    from mlwright.data.dataset import larger_than_memory

    if sample_rows is not None or larger_than_memory(data):
        if (table or query or sample or test or sensitive or groups or time_col or threshold
                or trim or distill or max_latency_ms or max_size_mb):
            raise typer.BadParameter(
                "Training out of core (--sample-rows, or a Parquet dataset larger than "
                "memory) takes none of --table, --query, --sample, --test, --sensitive, "
                "--groups, --time, --threshold, --trim, --distill, --max-latency-ms, "
                "--max-size-mb yet.")
        _train_large(data, target, out=out, started=started, budget=budget, metric=metric,
                     task=task, seed=seed, trials=trials, search=search, families=families,
                     cv=cv, n_jobs=n_jobs, class_weight=class_weight, cluster=address,
                     sample_rows=sample_rows, holdout_rows=holdout_rows, name=name,
                     store=store, no_register=no_register)
        return
    df = load_table(data, table=table, query=query, sample=sample, delimiter=delimiter,
               encoding=encoding)
    test_df = _check_report_arguments(df, target, test, sensitive)
    cv_value: int | str = int(cv) if cv.isdigit() else cv
    thr: str | float | None = threshold
    if threshold is not None:
        try:
            thr = float(threshold)
        except ValueError:
            thr = threshold
    state: dict[str, Any] = {"search": None, "result": None, "error": None}
    kept = after_training_seconds(budget, register=not no_register)
    training_budget = budget - kept
    # numba takes a second to import; the search runs for its whole budget anyway, so
    # importing it meanwhile keeps it off the time the report adds.
    if training_budget >= PREFETCH_FROM:
        threading.Thread(target=_prefetch, name="mlwright-prefetch", daemon=True).start()

    def on_trial(record: Any, search_state: Any) -> None:
        state["search"] = search_state

    def work() -> None:
        try:
            state["result"] = train_api(
                df, target, time_budget=training_budget, started_at=started,
                metric=metric, task=task, seed=seed, n_trials=trials, search=search,
                families=families.split(",") if families else None, cv=cv_value,
                groups=groups, time=time_col, n_jobs=n_jobs, class_weight=class_weight,
                threshold=thr, on_trial=on_trial, cluster=address, trim=trim,
                distill="ship" if ship_student else distill,
                max_latency_ms=max_latency_ms, max_size_mb=max_size_mb)
        except BaseException as exc:  # re-raised in the main thread
            state["error"] = exc

    progress = Progress(TextColumn("[bold]Searching[/]"), BarColumn(),
                        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                        TimeElapsedColumn(), console=console, transient=True)
    bar = progress.add_task("search", total=training_budget)
    from mlwright.cli.models import tracking_uri_for
    from mlwright.cli.register_worker import RegistrationWorker

    # MLflow's imports and its store's take a process of their own about 3 s of a core. A
    # longer training starts it with the search, which absorbs them (started when training
    # ended, they came on top of the report: --budget 30 beside a second training, 38-39 s
    # of 36.5; at the deadline, they slowed the refit: 29.4 s of training for 24.5). A
    # short one starts it once the search's deadline has passed (what runs then are the
    # last families' smallest first trials and the ensemble: the members ship as their fold
    # models); with the search, it cost the opening trial.
    registrar: RegistrationWorker | None = None
    registrar_from = (None if no_register
                      else 0.0 if training_budget >= PREFETCH_FROM else training_budget)
    worker = threading.Thread(target=work, name="mlwright-train", daemon=True)
    worker.start()
    with Live(progress, console=console, refresh_per_second=4, transient=True) as live:
        while worker.is_alive():
            worker.join(0.25)
            elapsed = time.monotonic() - started
            if registrar is None and registrar_from is not None and elapsed >= registrar_from:
                registrar = RegistrationWorker(tracking_uri_for(store))
            progress.update(bar, completed=min(training_budget, elapsed))
            if state["search"] is not None:
                from mlwright.search.records import leaderboard

                board = leaderboard(list(state["search"].records), state["search"].metric)
                if not board.empty:
                    live.update(Group(progress, _board_table(board,
                                                             state["search"].metric.name)))
        progress.update(bar, completed=training_budget)
    if state["error"] is not None:
        if registrar is not None:
            registrar.close()
        raise state["error"]
    if registrar is None and registrar_from is not None:  # training ended before it was due
        registrar = RegistrationWorker(tracking_uri_for(store))
    try:
        result = state["result"]
        result.params["time_budget"] = budget  # the user's as given, not the training's
        folder = result.save(out)
        console.print(_board_table(result.leaderboard, result.metric))
        members = ", ".join(f"{m['family']} {m['weight']:.0%}"
                            + (f" ({m['folds']} fold models)" if "folds" in m else "")
                            for m in result.model.describe())
        console.print(
            f"\n[bold]{result.task.value}[/] on [bold]{target}[/]: CV {result.metric} "
            f"[bold]{result.cv_score:.5g}[/] (folds: "
            f"{', '.join(f'{v:.4g}' for v in result.cv_scores)})\n"
            f"Ensemble: {members}\n"
            f"Time: {result.timings['total']:.1f} s of {training_budget:.3g} s "
            f"(search {result.timings['search']:.1f}, refit {result.timings['refit']:.1f}; "
            f"{kept:.2g} s of --budget {budget:g} kept for the report"
            f"{'' if no_register else ' and registration'})\n"
            f"Saved to [bold]{folder}[/] ({RunFolder.MODEL}, {RunFolder.LEADERBOARD}, "
            f"{RunFolder.OOF}, {RunFolder.METRICS}, {RunFolder.CONTRACT})")
        if result.trim is not None:
            console.print(_trim_text(result.trim, result.metric))
        if result.limits is not None:
            console.print(_limits_text(result.limits), soft_wrap=True)
        if result.distill is not None:
            console.print(_distill_table(result.distill))
        elif distill:
            console.print("[yellow]--distill[/]: no student was trained (see the warning "
                          "above); the teacher ships alone.")
        from mlwright.cli.report import write_report

        write_report(result, folder, data=df, test=test_df, sensitive=sensitive,
                     explain_seconds=explain_seconds_left(budget, time.monotonic() - started,
                                                          register=not no_register))
        if not no_register:  # last: the run folder (report included) is complete by now
            from mlwright.cli.models import default_name, register_training
            from mlwright.registry import CHALLENGER

            model_name = name or default_name(data, table)
            alias = None
            why = _outside_check(folder)
            if why is not None and not force:
                alias = CHALLENGER
                console.print(
                    f"[yellow]Not promoted to champion[/]: {why}. Registered as "
                    f"{CHALLENGER}; 'mlwright models promote {model_name} VERSION' makes it "
                    f"champion, or train again with --force.", soft_wrap=True)
            elif why is not None:
                console.print(f"[yellow]--force[/]: registered as usual although {why}.",
                              soft_wrap=True)
            register_training(result, folder, name=model_name,
                              store=store, config={
                                  "data": data, "target": target, "budget": budget,
                                  "metric": metric, "task": task, "seed": seed,
                                  "trials": trials,
                                  "search": search, "families": families, "cv": cv,
                                  "groups": groups, "time": time_col,
                                  "class_weight": class_weight, "threshold": threshold,
                                  **({"trim": True} if trim else {}),
                                  **({"distill": "ship" if ship_student else True}
                                     if distill else {}),
                                  **{k: v for k, v in (("max_latency_ms", max_latency_ms),
                                                       ("max_size_mb", max_size_mb))
                                     if v is not None}},
                              sample=df.drop(columns=[target]).head(5), alias=alias,
                              worker=registrar)
    finally:
        if registrar is not None:
            registrar.close()


def _train_large(data: str, target: str, *, out: Path, started: float, budget: float,
                 metric: str | None, task: str | None, seed: int, trials: int | None,
                 search: str, families: str | None, cv: str, n_jobs: int,
                 class_weight: str | None, cluster: str | None, sample_rows: int | None,
                 holdout_rows: int, name: str | None, store: str | None,
                 no_register: bool) -> None:
    """``train`` out of core (mlwright.api.train_large): progress lines, no live board."""
    from mlwright.api import LARGE_SAMPLE_ROWS, train_large

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:7.1f} s[/]  {message}",
                      soft_wrap=True)

    result = train_large(
        data, target, sample_rows=sample_rows or LARGE_SAMPLE_ROWS, holdout_rows=holdout_rows,
        time_budget=budget, started_at=None, metric=metric, task=task, seed=seed,
        n_trials=trials, search=search, families=families.split(",") if families else None,
        cv=int(cv) if cv.isdigit() else cv, n_jobs=n_jobs, class_weight=class_weight,
        cluster=cluster, progress=say)
    folder = result.save(out)
    large = result.params["large"]
    score = large.get(f"holdout_{result.metric}")
    console.print(
        f"\n[bold]{result.task.value}[/] on [bold]{target}[/], out of core: "
        f"{large['family']} (trial {large['trial']}, {large['n_estimators']} rounds) refit on "
        f"{large['refit_rows']:,} of {large['rows']:,} rows on {large['refit_workers']} Dask "
        f"workers\nCV {result.metric} on the {large['sample_rows']:,}-row sample "
        f"[bold]{result.cv_score:.5g}[/]; holdout {result.metric} of the refit model "
        + ("n/a" if score is None else f"[bold]{score:.5g}[/]")
        + f" on {large['holdout_rows']:,} rows it never saw\n"
        f"Time: {result.timings['total']:.1f} s (search {result.timings['search']:.1f}, "
        f"refit {result.timings['refit']:.1f})\nSaved to [bold]{folder}[/]", soft_wrap=True)
    from mlwright.cli.report import write_report

    # The holdout is the report's test table: the shipped model on rows it never saw. The
    # CV range it is checked against is the sample's, of a model fitted on fewer rows.
    write_report(result, folder, test=result.holdout)
    if not no_register:
        from mlwright.cli.models import default_name, register_training

        register_training(result, folder, name=name or default_name(data, None), store=store,
                          config={"data": data, "target": target, "budget": budget,
                                  "metric": metric, "task": task, "seed": seed,
                                  "trials": trials, "search": search, "families": families,
                                  "cv": cv, "sample_rows": sample_rows,
                                  "holdout_rows": holdout_rows},
                          sample=result.sample.drop(columns=[target]).head(5)
                          if result.sample is not None else None)


def register(app: typer.Typer) -> None:
    app.command()(train)
