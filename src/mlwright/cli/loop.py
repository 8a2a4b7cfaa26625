"""``mlwright retrain`` and ``mlwright run``: the closed loop (issue 8)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlwright._json import dumps
from mlwright.cli._common import console, err_console

ConfigArg = Annotated[Path, typer.Argument(help="The project's mlwright.toml.")]
BudgetOpt = Annotated[float | None, typer.Option(
    "--budget", "-b", min=1, help="Retrain budget in seconds (default loop.time_budget, else "
    "train.time_budget).")]
FamiliesOpt = Annotated[str | None, typer.Option(
    help="Comma-separated model families for the retrain, e.g. lightgbm,linear.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the pass as JSON.")]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_step(step: str, value: Any) -> None:
    if step == "paused":
        console.print(f"[bold]The loop is paused[/] (by {value.get('actor') or '?'}: "
                      f"{value.get('reason') or 'no reason given'}); nothing checked.")
    elif step == "rollback":
        if value.get("action") not in ("none", None):
            console.print(f"[bold]Rollback check[/]: {value['action']}"
                          + (f" ({value['reason']})" if value.get("reason") else ""))
    elif step == "triggers":
        table = Table(title="Triggers", title_justify="left")
        for col in ("trigger", "fired", "reason"):
            table.add_column(col)
        for t in value:
            table.add_row(t.name, "[bold green]yes[/]" if t.fired else "no", t.reason)
        console.print(table)
    elif step == "retrain_started":
        console.print(f"Retraining in worker process {value.pid} (job {value.job_id}; "
                      f"{value.info['data']['train_rows']:,} training rows, "
                      f"{value.info['data']['eval_recent_rows']:,} recent + "
                      f"{value.info['data']['eval_holdout_rows']:,} holdout rows kept to "
                      f"compare)…")
    elif step == "retrain":
        if value.ok:
            console.print(f"Registered version [bold]{value.version}[/] as {value.alias}.")
        else:
            err_console.print(f"[bold red]Retrain failed[/]: {value.error}")
    elif step == "decision":
        _print_decision(value)


def _print_decision(decision: Any) -> None:
    c = decision.comparison
    if c is not None:
        table = Table(title=f"Challenger {c.challenger_version} against champion "
                      f"{c.champion_version} ({c.n_rows:,} rows)", title_justify="left")
        for col in ("", "champion", "challenger", "improvement"):
            table.add_column(col, justify="right" if col else "left")
        table.add_row(f"{c.metric} (all)", _fmt(c.champion_score), _fmt(c.challenger_score),
                      f"{c.improvement:+.4g} [{c.ci_low:+.3g}, {c.ci_high:+.3g}]")
        for part, row in c.parts.items():
            table.add_row(f"  {part} (n={row['n']})", _fmt(row["champion"]),
                          _fmt(row["challenger"]), f"{row['improvement']:+.4g}"
                          if row["improvement"] == row["improvement"] else "-")
        for s in c.slices:
            mark = "" if s["enforced"] else " (not guarded)"
            table.add_row(f"  {s['column']}={s['value']} (n={s['n']}){mark}",
                          _fmt(s["champion"]), _fmt(s["challenger"]),
                          f"{s['improvement']:+.4g}" if s["improvement"] == s["improvement"]
                          else "-")
        console.print(table)
    for reason in decision.reasons:
        console.print(f"  • {reason}")
    colour = "green" if decision.promote else "yellow"
    console.print(f"Decision: [bold {colour}]{decision.action}[/]")


def _print_pass(result: Any, as_json: bool) -> None:
    if as_json:
        # Strict JSON (non-finite numbers as null), written as is: a JSON parser reads it.
        typer.echo(dumps(result.to_dict(), indent=2))
        return
    if result.retrain is None:
        console.print("No trigger fired; nothing to retrain.")
    console.print(f"Pass done in {result.seconds:.1f} s: [bold]{result.action}[/].")


def _exit_on_failure(result: Any) -> None:
    """A failed pass (the retrain failed) is a failed command: exit 1 for cron and CI."""
    if result.action == "failed":
        raise typer.Exit(1)


def _train_options(budget: float | None, families: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if budget is not None:
        out["time_budget"] = budget
    if families:
        out["families"] = [f.strip() for f in families.split(",") if f.strip()]
    return out


def run(
    config: ConfigArg = Path("mlwright.toml"),
    once: Annotated[bool, typer.Option(
        "--once", help="One pass (rollback check, triggers, retrain, compare, decide) and "
        "exit: for cron or CI.")] = False,
    serve: Annotated[bool, typer.Option(
        "--serve/--no-serve", help="Run the server beside the loop (service mode).")] = True,
    budget: BudgetOpt = None,
    families: FamiliesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the closed loop: serve the champion, monitor it, retrain when a trigger fires,
    promote a challenger only when it is really better, roll back when it is not."""
    import signal
    import threading

    from mlwright.config import load_config
    from mlwright.loop.runner import run_once

    project = load_config(config)
    options = _train_options(budget, families)
    step = None if as_json else _print_step
    if once:
        with err_console.status("One pass of the loop…"):
            result = run_once(project, on_step=step, **options)
        _print_pass(result, as_json)
        _exit_on_failure(result)
        return
    from mlwright.loop.service import LoopService

    stop = threading.Event()
    received: list[str] = []

    def handle(signum: int, _frame: Any) -> None:
        # No printing here: the handler runs inside whatever the main thread was doing,
        # possibly a first import within rich itself (a re-entrant import then fails).
        received.append(signal.Signals(signum).name)
        stop.set()

    def announce() -> None:
        stop.wait()
        err_console.print(f"Stopping ({received[0] if received else 'stop'}): finishing the "
                          f"pass, stopping the server…")

    threading.Thread(target=announce, name="mlwright-stop", daemon=True).start()
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    s = project.serve
    console.print(f"Running the loop for [bold]{project.name}[/]"
                  + (f", serving on http://{s.host}:{s.port}" if serve else "")
                  + f"; a pass every {project.loop.check_every}. SIGTERM or Ctrl+C stops it.")
    LoopService(project, config, serve=serve, on_step=step,
                on_pass=lambda r: _print_pass(r, as_json), train_options=options).run(stop)
    console.print("Stopped.")


def retrain(
    name: Annotated[str, typer.Argument(help="The project's model name (config's name).")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The project's mlwright.toml."
                                         )] = Path("mlwright.toml"),
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "manual retrain",
    budget: BudgetOpt = None,
    families: FamiliesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrain NAME now, compare the challenger with the champion, and decide."""
    from mlwright.config import load_config
    from mlwright.exceptions import ConfigError
    from mlwright.loop.runner import run_once

    project = load_config(config)
    if project.name != name:
        raise ConfigError(f"{str(config)!r} is the project {project.name!r}, not {name!r}; "
                          f"pass --config with {name!r}'s mlwright.toml.")
    with err_console.status(f"Retraining {name}…"):
        result = run_once(project, force=reason, on_step=None if as_json else _print_step,
                          **_train_options(budget, families))
    _print_pass(result, as_json)
    _exit_on_failure(result)


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(retrain)
