"""``mlwright monitor``: drift, data quality and live performance (issue 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlwright.cli._common import StoreOpt, console, err_console

_SEVERITY = {"critical": "bold red", "warning": "yellow"}


def _project(config: Path | None) -> Any:
    from mlwright.config import load_config

    if config is not None:
        return load_config(config)
    return load_config("mlwright.toml") if Path("mlwright.toml").exists() else None


def _reference_of(name: str, project: Any, store: str | None = None) -> str:
    """The champion's run folder from the registry (the reference when none is given)."""
    from mlwright.exceptions import MonitorError, RegistryError
    from mlwright.registry import Registry

    uri = project.store.resolved_tracking_uri() if project is not None else None
    if store is not None:
        from mlwright.cli.models import tracking_uri_for

        uri = tracking_uri_for(store)
    try:
        return Registry(uri).load(f"{name}@champion").source
    except RegistryError as exc:
        raise MonitorError(
            f"No reference for {name!r}: {exc} Give one with --reference RUN_FOLDER (a folder "
            f"written by 'mlwright train') or --reference contract.json.") from None


def monitor(
    name: Annotated[str, typer.Argument(help="The model name the server logs under.")],
    window: Annotated[str | None, typer.Option(
        "--window", "-w", help="Last N records (5000) or a duration (1d, 6h); default "
        "monitor.window.")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", help="SQLAlchemy URL of the prediction log (default: the project's store).")
    ] = None,
    reference: Annotated[str | None, typer.Option(
        "--reference", "-r", help="Run folder or contract.json (default: the registry's "
        "champion).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML report.")
                   ] = Path("monitor.html"),
    version: Annotated[str | None, typer.Option(help="Only records of this model version.")
                       ] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="mlwright.toml with \\[monitor] thresholds (default: ./mlwright.toml"
        " when present).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the JSON here.")
                        ] = None,
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Do not record or send "
                                            "alerts.")] = False,
    store: StoreOpt = None,
) -> None:
    """Drift, data quality and live performance of NAME's latest window; writes an HTML report."""
    from mlwright._json import dumps
    from mlwright.config import MonitorConfig, StoreConfig
    from mlwright.monitor import run_monitor

    project = _project(config)
    cfg = project.monitor if project is not None else MonitorConfig()
    url = db or (project.store if project is not None else StoreConfig()).with_option(
        store).database_url()
    ref = reference or _reference_of(name, project, store)
    with err_console.status(f"Monitoring {name} (window {window or cfg.window})…"):
        report = run_monitor(url, name, reference=ref, window=window, config=cfg,
                             version=version, alerts=not no_alerts)
        path = report.write_html(out)
        if json_out is not None:
            json_out.write_text(dumps(report.to_dict(), indent=2))
    print_report(report)
    console.print(f"Report: [bold]{escape(str(path))}[/]")


def print_report(report: Any) -> None:
    d = report.drift
    span = report.to_dict()
    console.print(f"[bold]{escape(report.model)}[/]: {report.n_records:,} records "
                  f"({report.n_scored:,} scored), {span['start']} to {span['end']}")
    verdict = "[bold red]dataset drift[/]" if d.drifted else "no dataset drift"
    console.print(f"{verdict}: {d.n_drifted} of {d.n_features} features drifted "
                  f"({d.share:.0%}; threshold {d.threshold:.0%}; {d.describe()})")
    if d.skipped:
        console.print(f"Not checked for drift: {escape(d.describe_skipped())}")
    table = Table(title="Feature drift", title_justify="left")
    for col in ("feature", "detector", "statistic", "p (adj.)", "drift"):
        table.add_column(col, justify="right" if col in ("statistic", "p (adj.)") else "left")
    for f in report.features[:25]:
        r = f.result
        p = "-" if r.p_adjusted is None and r.p_value is None else \
            f"{(r.p_adjusted if r.p_adjusted is not None else r.p_value):.3g}"
        table.add_row(escape(f.name), r.detector, f"{r.statistic:.3g}", p,
                      "[bold red]yes[/]" if f.drifted else "no")
    console.print(table)
    if report.prediction_drift is not None:
        pdrift = report.prediction_drift
        console.print(f"Prediction drift: {'[bold red]yes[/]' if pdrift.drifted else 'no'} "
                      f"({pdrift.result.detector} {pdrift.result.statistic:.3g})")
    perf = report.performance
    if perf is not None and perf.value is not None:
        ci = f" [{perf.low:.4g}, {perf.high:.4g}]" if perf.low is not None else ""
        off = f"; validation {perf.offline:.4g}" if perf.offline is not None else ""
        console.print(f"Live {perf.metric}: [bold]{perf.value:.4g}[/]{ci} on "
                      f"{perf.n_labelled:,} labelled records{off}")
    else:
        console.print("Live performance: no feedback in this window.")
    s, q = report.service, report.quality
    lat = s.latency_ms
    console.print(f"Errors {s.error_rate:.1%} ({q.n_rejected:,} rejected); latency p50 "
                  f"{lat['p50'] or 0:.3g} ms, p99 {lat['p99'] or 0:.3g} ms")
    for a in report.alerts:
        style = _SEVERITY.get(a.severity, "")
        console.print(f"[{style}]{a.severity}[/] {escape(a.message)}")


def register(app: typer.Typer) -> None:
    app.command()(monitor)
