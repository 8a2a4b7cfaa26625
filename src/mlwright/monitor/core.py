"""``run_monitor``: one window of the prediction log against the model's reference."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright._logging import get_logger
from mlwright.monitor.log import no_predictions, read_window
from mlwright.store import open_database, parse_window, window_filter

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from mlwright.config import MonitorConfig
    from mlwright.data.contract import Contract
    from mlwright.monitor.reference import Reference
    from mlwright.monitor.report import MonitorReport

__all__ = ["run_monitor"]

log = get_logger(__name__)


def _import_scorers() -> None:
    """The detectors' and metrics' heavy imports (scipy.stats, scikit-learn: ~1.5 s cold)."""
    import scipy.spatial.distance
    import scipy.stats  # noqa: F401

    import mlwright.scoring  # noqa: F401


def _predictions(window: Any, reference: Reference) -> list[Any] | np.ndarray:
    """The sampled scored records' predictions: positive-class probability (binary),
    value (regression) or label (multiclass)."""
    import orjson

    task = reference.task
    if task == "binary":
        rows = [r for r in orjson.loads(window.sample.proba) if r is not None]
        return np.asarray(rows, dtype=np.float64)[:, -1] if rows else np.array([])
    values = [v for v in orjson.loads(window.sample.predictions) if v is not None]
    return np.asarray(values, dtype=np.float64) if task == "regression" else values


def run_monitor(database: str | Engine, model: str, *,
                reference: Reference | Contract | str | Path,
                window: str | int | None = None, end: float | None = None,
                config: MonitorConfig | None = None, version: str | None = None,
                sample: pd.DataFrame | None = None, alerts: bool = True,
                n_boot: int = 200) -> MonitorReport:
    """Monitor the last window of ``model``'s prediction log.

    Args:
        database: SQLAlchemy URL (or engine) of the prediction log.
        model: the registered model name the server logs under.
        reference: a :class:`Reference`, a Contract, a contract JSON file, or a run folder
            (contract.json + sample.parquet + oof.parquet + metrics.json).
        window: ``"5000"`` (last records) or ``"1d"`` / ``"6h"``; default ``config.window``.
        end: unix time the window ends at (default: the last logged record).
        config: thresholds (``[monitor]`` of mlwright.toml); defaults when None.
        version: only records answered by this model version.
        sample: reference rows for numeric detectors, when ``reference`` has none.
        alerts: write alerts to the events table and the webhook.
        n_boot: bootstrap resamples for the performance intervals.
    """
    from mlwright.config import MonitorConfig
    from mlwright.monitor.alerts import evaluate_alerts, record_alerts
    from mlwright.monitor.drift import (
        feature_drift,
        prediction_drift,
        prediction_window,
        window_columns,
    )
    from mlwright.monitor.performance import join_feedback, live_performance
    from mlwright.monitor.quality import data_quality, service_health
    from mlwright.monitor.reference import load_reference
    from mlwright.monitor.report import MonitorReport

    config = config or MonitorConfig()
    spec = parse_window(window if window is not None else config.window)
    ref = load_reference(reference, sample=sample)
    engine = open_database(database)  # cached: GET /v1/monitor runs this repeatedly
    started = time.perf_counter()
    where = window_filter(engine, model, spec, end=end, version=version)
    if where is None:
        raise no_predictions(model, str(engine.url), version=version, engine=engine)
    # The database releases the GIL while it reads: the feedback join and the detectors'
    # imports run beside the window's read (half the time on a million records).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlwright-monitor") as pool:
        imports = pool.submit(_import_scorers)
        labelled = (pool.submit(join_feedback, engine, where)
                    if ref.contract.target is not None else None)
        win = read_window(engine, model, spec, sample_rows=config.sample_rows, where=where)
        joined = labelled.result() if labelled is not None else None
        imports.result()
    if len(win) == 0:
        raise no_predictions(model, str(engine.url), version=version, engine=engine)
    t_read = time.perf_counter()
    table = win.inputs(ref)
    current = window_columns(table, ref)
    t_parse = time.perf_counter()
    features, dataset = feature_drift(ref, current, config)
    pred = prediction_drift(ref, prediction_window(_predictions(win, ref), ref), config)
    t_drift = time.perf_counter()
    quality = data_quality(win, current, ref)
    service = service_health(win)
    performance = live_performance(engine, win, ref, n_boot=n_boot, joined=joined)
    t_done = time.perf_counter()
    log.info("monitor %s: %d records; read %.2fs, parse %.2fs, drift %.2fs, rest %.2fs",
             model, len(win), t_read - started, t_parse - t_read, t_drift - t_parse,
             t_done - t_drift)
    report = MonitorReport(
        model=model, window=spec.text, start=win.start, end=win.end, n_records=len(win),
        n_scored=win.n_scored, n_sampled=len(win.sample), versions=win.versions,
        features=features, drift=dataset, prediction_drift=pred, quality=quality,
        service=service, performance=performance, reference=ref.source or "contract",
        generated=time.time())
    report.alerts = evaluate_alerts(report, config)
    if alerts and report.alerts:
        record_alerts(engine, model, report.alerts, webhook=config.webhook, window=spec.text)
    from mlwright.monitor.routes import update_gauges

    update_gauges(report)
    return report
