"""``mlwright models`` and ``mlwright reproduce``: the MLflow-backed registry (issue 5)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mlwright.cli._common import StoreOpt, console, err_console, load_table
from mlwright.run import TrainResult

if TYPE_CHECKING:
    from mlwright.cli.register_worker import RegistrationWorker

models_app = typer.Typer(
    name="models", no_args_is_help=True,
    help="Registered models: versions, aliases (champion/challenger), lineage, audit log.")

UriOpt = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else the "
    "store's sqlite).")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why; kept in the audit log.")]


def tracking_uri_for(store: str | Path | None, tracking_uri: str | None = None) -> str | None:
    """``--tracking-uri`` wins; ``--store URL`` means MLflow in that database (its own
    schema on PostgreSQL), ``--store ROOT`` the sqlite store in ROOT."""
    if tracking_uri:
        return tracking_uri
    if store is not None and "://" in str(store):
        from mlwright.store import mlflow_uri

        return mlflow_uri(str(store))
    if store is not None:
        return f"sqlite:///{(Path(store) / 'mlflow.db').resolve().as_posix()}"
    return None


def _registry(store: str | None, tracking_uri: str | None) -> Any:
    from mlwright.registry import Registry

    return Registry(tracking_uri_for(store, tracking_uri))


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.5g}"


def default_name(data: str, table: str | None = None) -> str:
    """The project name: mlwright.toml's when it trains on ``data``, else the file's stem."""
    from mlwright.config import CONFIG_FILE, load_config

    if Path(CONFIG_FILE).exists():
        try:
            config = load_config(CONFIG_FILE)
            if config.data.source == data:
                return config.name
        except Exception:
            pass
    if "://" in data:
        return table or "project"
    return Path(data).stem or "project"


def register_training(result: TrainResult, folder: Path, *, name: str, store: str | None,
                      config: dict[str, Any], sample: Any = None, alias: str | None = None,
                      worker: RegistrationWorker | None = None) -> None:
    """What ``mlwright train`` calls last: log the run and register the version (with
    ``alias``, or the registry's default: champion for the first version), in ``worker``
    (started for ``store`` while the report was written) or, without one or when it is
    gone, here."""
    from mlwright.registry import Registry
    from mlwright.registry.tracking import trials_table

    started = time.monotonic()
    with err_console.status(f"Registering [bold]{name}[/] in MLflow…"):
        done = None if worker is None else worker.register(
            folder, name=name, config=config, alias=alias, trials=trials_table(result))
        if done is None:
            reg = Registry(tracking_uri_for(store))
            info = reg.register(result, folder, name=name, config=config, sample=sample,
                                alias=alias)
            done = {"name": info.name, "version": info.version, "aliases": info.aliases,
                    "tracking_uri": reg.tracking_uri}
    aliases = done["aliases"]
    console.print(f"Registered [bold]{done['name']}/{done['version']}[/] "
                  f"({', '.join(aliases) or 'no alias'}) in {done['tracking_uri']} "
                  f"[dim]({time.monotonic() - started:.1f} s)[/]; load it with "
                  f"mw.load_model({done['name'] + '@' + (aliases or ['champion'])[0]!r}).")


@models_app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Every registered version with its aliases, score and data fingerprint."""
    reg = _registry(store, tracking_uri)
    infos = reg.list(name)
    if not infos:
        console.print(f"No registered models in {reg.tracking_uri}. Train one with "
                      f"'mlwright train DATA --target COL'.")
        return
    table = Table(title=f"Registered models ({reg.tracking_uri})", title_justify="left")
    for col in ("model", "version", "aliases", "status", "CV score", "data", "created"):
        table.add_column(col, justify="right" if col == "version" else "left",
                         no_wrap=col in ("model", "version", "aliases", "status"))
    for i in infos:
        status = "[green]ready[/]" if i.status == "ready" else f"[red]{i.status}[/]"
        table.add_row(i.name, i.version, ", ".join(i.aliases), status,
                      f"{i.metric or ''} {_score(i.cv_score)}".strip(),
                      (i.data_fingerprint or "")[7:19], _when(i.created))
    console.print(table)


@models_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION.")],
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """A version's lineage: data fingerprint, contract, config, code version, run, metrics."""
    reg = _registry(store, tracking_uri)
    lin = reg.lineage(ref)
    table = Table(title=f"{lin['name']}/{lin['version']}", title_justify="left",
                  show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    contract = lin["contract"] or {}
    rows = [
        ("aliases", ", ".join(lin["aliases"]) or "-"), ("status", lin["status"]),
        ("task / metric", f"{lin['task']} / {lin['metric']}"),
        ("CV score", _score(lin["cv_score"])), ("target", lin["target"]),
        ("data fingerprint", lin["data_fingerprint"] or "-"),
        ("contract", contract.get("error") or
         f"{contract.get('features')} features, {contract.get('rows')} rows"),
        ("seed", str(lin["seed"])),
        ("train arguments", ", ".join(f"{k}={v}" for k, v in lin["train_params"].items())),
        ("code", (lin["git_commit"] or "not in a git repository") +
         (" (uncommitted changes)" if lin["git_dirty"] == "true" else "")),
        ("mlwright", lin["mlwright_version"] or "-"),
        ("run", f"{lin['run_id']} ({lin['run_status']}, experiment {lin['experiment_id']})"),
        ("created", _when(lin["created"])), ("source", lin["source"]),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    metrics = reg.run_metrics(reg.show(f"{lin['name']}/{lin['version']}"))
    if metrics:
        mt = Table(title="Run metrics", title_justify="left")
        mt.add_column("metric")
        mt.add_column("value", justify="right")
        for key in sorted(metrics):
            mt.add_row(key, f"{metrics[key]:.5g}")
        console.print(mt)


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="The version to make champion.")],
    reason: ReasonOpt = "",
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Make VERSION the champion (the previous one is kept for rollback)."""
    reg = _registry(store, tracking_uri)
    previous = reg.promote(name, version, actor="cli", reason=reason)
    console.print(f"[bold]{name}@champion[/] -> {version}"
                  + (f" (was {previous}; 'mlwright models rollback {name}' undoes it)"
                     if previous else ""))


@models_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: ReasonOpt = "",
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Give the champion alias back to the previous champion."""
    reg = _registry(store, tracking_uri)
    current = reg.resolve(f"{name}@champion")[1]
    target = reg.rollback(name, actor="cli", reason=reason)
    console.print(f"[bold]{name}@champion[/] -> {target} (rolled back from {current})")


@models_app.command("diff")
def diff(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    v1: Annotated[str, typer.Argument(help="First version.")],
    v2: Annotated[str, typer.Argument(help="Second version.")],
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Metrics, arguments, data and contract of two versions side by side."""
    reg = _registry(store, tracking_uri)
    d = reg.diff(name, v1, v2)
    table = Table(title=f"{name}: {v1} vs {v2}", title_justify="left")
    for col in ("", v1, v2, "change"):  # fold: long parameter names must stay whole
        table.add_column(col, justify="left" if col == "" else "right", overflow="fold")
    for key, (a, b) in d["metrics"].items():
        change = "" if a is None or b is None else f"{b - a:+.4g}"
        table.add_row(key, _score(a), _score(b), change)
    for key, (a, b) in d["params"].items():
        table.add_row(key, str(a), str(b), "changed")
    table.add_row("data fingerprint", (d["v1"]["data_fingerprint"] or "")[7:19],
                  (d["v2"]["data_fingerprint"] or "")[7:19],
                  "same" if d["same_data"] else "different")
    console.print(table)
    c = d["contract"]
    if c.get("error"):
        console.print(f"Contract: could not compare ({c['error']})")
    elif any(c.values()):
        console.print(f"Contract: added {c['added'] or '-'}, removed {c['removed'] or '-'}, "
                      f"kind changed {c['kind_changed'] or '-'}")
    else:
        console.print("Contract: same columns and kinds.")


@models_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="The version to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    reason: ReasonOpt = "",
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Delete a version (never the champion)."""
    reg = _registry(store, tracking_uri)
    if not yes and not typer.confirm(f"Delete {name}/{version}?"):
        raise typer.Exit(1)
    reg.delete(name, version, actor="cli", reason=reason)
    console.print(f"Deleted {name}/{version}.")


@models_app.command("audit")
def audit(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    limit: Annotated[int, typer.Option(help="Show the last N entries.")] = 50,
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Every alias change and loop decision for NAME: who, when, why."""
    reg = _registry(store, tracking_uri)
    entries = reg.audit.entries(name, limit=limit)
    if not entries:
        console.print(f"No audit entries for {name!r} in {reg.database_url}.")
        return
    table = Table(title=f"Audit log: {name}", title_justify="left")
    for col in ("when", "action", "version", "from", "actor", "reason"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(_when(e["ts"]), e["action"], e["version"] or "", e["from_version"] or "",
                      e["actor"], e["reason"])
    console.print(table)


def _why_not_reproduced(rep: Any) -> str:
    """The likeliest cause first: other data explain any difference, the budget only then."""
    if rep.recorded_fingerprint and rep.data_fingerprint and not rep.same_data:
        return (" The data differ from the recorded training data (fingerprints above): "
                "retrain on the same table to reproduce the version.")
    if rep.deterministic:
        return ""
    return (" The version was trained on a time budget, which depends on the machine's load; "
            "train with --trials for exactly reproducible runs.")


def reproduce(
    ref: Annotated[str, typer.Argument(help="NAME/VERSION (or NAME@ALIAS) to reproduce.")],
    data: Annotated[str, typer.Option("--data", help="The training table to retrain on.")],
    tolerance: Annotated[float, typer.Option(help="Largest CV score difference that still "
                                             "matches.")] = 0.01,
    budget: Annotated[float | None, typer.Option(
        "--budget", help="Override the recorded time budget.")] = None,
    store: StoreOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Retrain a version with its recorded config and seed; say whether the metrics match."""
    from mlwright.api import reproduce as run

    reg = _registry(store, tracking_uri)
    info = reg.show(ref)
    df = load_table(data, table=None, query=None, sample=None)
    with err_console.status(f"Retraining {info.ref} with its recorded arguments…"):
        rep = run(info.ref, df, tolerance=tolerance, time_budget=budget, registry=reg)
    table = Table(title=f"Reproduction of {rep.ref}", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row(f"CV {rep.metric} recorded", f"{rep.recorded:.5g}")
    table.add_row(f"CV {rep.metric} reproduced", f"{rep.reproduced:.5g}")
    table.add_row("difference", f"{rep.difference:.3g} (tolerance {rep.tolerance:g})")
    table.add_row("same data", "yes" if rep.same_data else
                  f"no (recorded {str(rep.recorded_fingerprint)[7:19]}, given "
                  f"{str(rep.data_fingerprint)[7:19]})")
    table.add_row("arguments", ", ".join(f"{k}={v}" for k, v in rep.train_args.items()))
    console.print(table)
    if rep.matches:
        console.print(f"[green]Reproduced[/]: the metrics match within {rep.tolerance:g}.")
    else:
        console.print(f"[red]Not reproduced[/]: the metrics differ by {rep.difference:.3g}."
                      + _why_not_reproduced(rep))
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(reproduce)
    app.add_typer(models_app, name="models")
