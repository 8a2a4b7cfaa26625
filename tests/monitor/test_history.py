"""The monitor over time (monitor/history.py): windows aligned to one ladder of steps,
each computed by the monitor once and read back from the project database afterwards; live
performance per window from the same feedback join and metric as the monitor's."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from monitor_replay import log_rows  # tests/monitor/ is on sys.path

from mlwright.monitor import run_monitor
from mlwright.monitor.history import (
    MAX_WINDOWS,
    STEPS,
    performance_series,
    pick_step,
    window_edges,
    window_history,
)
from mlwright.monitor.reference import load_reference
from mlwright.store import feedback, monitor_windows, open_database
from telco_drift import shifted  # tests/telco_drift.py

T0 = 1_700_000_040.0  # a multiple of 60: windows of a minute start with the traffic


def test_steps_cut_any_range_into_a_bounded_number_of_windows() -> None:
    assert pick_step(30) == 1 and pick_step(3600) == 15 and pick_step(365 * 86400) == 86400
    for span in (10, 500, 86400, 30 * 86400, 365 * 86400):
        assert span / pick_step(span) <= MAX_WINDOWS
        assert pick_step(span) == min(s for s in STEPS if span / s <= MAX_WINDOWS)
    assert window_edges(T0 - 1, T0 + 120, 60) == [T0 - 60, T0, T0 + 60, T0 + 120]


@pytest.fixture
def drifting_log(holdout_run, tmp_path: Path):  # type: ignore[no-untyped-def]
    """600 records in the first two minutes, then 600 drifted ones in the next two; every
    record labelled."""
    engine = open_database(f"sqlite:///{tmp_path / 'log.db'}")
    test = holdout_run.test
    ids = log_rows(engine, holdout_run, test.iloc[:600], t0=T0 + 0.1, step=0.2)
    ids += log_rows(engine, holdout_run, shifted(test.iloc[600:1200]), t0=T0 + 120.1,
                    step=0.2)
    labels = list(test["churn"].iloc[:1200])
    with engine.begin() as conn:
        conn.execute(feedback.insert(), [
            {"request_id": rid, "row": row, "key": None, "label": orjson.dumps(label).decode(),
             "ts": T0 + 1000} for (rid, row), label in zip(ids, labels, strict=True)])
    return engine, load_reference(holdout_run.folder)


def test_windows_are_computed_once_then_read(drifting_log) -> None:  # type: ignore[no-untyped-def]
    engine, reference = drifting_log
    settled = T0 + 10_000
    first = window_history(engine, "telco", reference=reference, start=T0, end=T0 + 240,
                           step=60, now=settled)
    assert [end for end, _ in first.windows] == [T0 + 60, T0 + 120, T0 + 180, T0 + 240]
    assert first.computed == 4
    summaries = [s for _, s in first.windows]
    assert all(s is not None for s in summaries)
    assert sum(s["n"] for s in summaries) == 1200 and summaries[0]["roles"] == {
        "champion 1": 300}
    # The monitor's own figures: the drifted half drifts, the first does not.
    assert summaries[0]["features"]["monthly_charges"][2] is False
    assert summaries[3]["features"]["monthly_charges"][2] is True
    assert summaries[3]["drift_share"] > summaries[0]["drift_share"]
    direct = run_monitor(engine, "telco", reference=reference, window="60s", end=T0 + 240,
                         alerts=False)
    assert summaries[3]["drift_share"] == direct.drift.share
    assert summaries[3]["p99"] == direct.service.latency_ms["p99"]
    # Read back, not recomputed: the rows are what the next view gets.
    again = window_history(engine, "telco", reference=reference, start=T0, end=T0 + 240,
                           step=60, now=settled + 1)
    assert again.computed == 0 and again.windows == first.windows
    with engine.connect() as conn:
        assert conn.execute(monitor_windows.select()).all().__len__() == 4


def test_a_young_window_is_recomputed_and_an_open_one_never_stored(drifting_log
                                                                   ) -> None:  # type: ignore[no-untyped-def]
    engine, reference = drifting_log
    young = window_history(engine, "telco", reference=reference, start=T0, end=T0 + 120,
                           step=60, now=T0 + 100)
    assert young.computed == 2  # the second window ends after "now": open, not stored
    with engine.connect() as conn:
        assert [r.end_ts for r in conn.execute(monitor_windows.select())] == [T0 + 60]
    # 5 s later the unsettled window is still fresh; 60 s later it is computed again.
    assert window_history(engine, "telco", reference=reference, start=T0, end=T0 + 60,
                          step=60, now=T0 + 105).computed == 0
    assert window_history(engine, "telco", reference=reference, start=T0, end=T0 + 60,
                          step=60, now=T0 + 160).computed == 1


def test_performance_per_window_is_the_monitors_metric(drifting_log) -> None:  # type: ignore[no-untyped-def]
    engine, reference = drifting_log
    perf = performance_series(engine, "telco", reference=reference, start=T0, end=T0 + 240,
                              step=60, n_boot=50)
    assert perf is not None and perf.n_labelled == 1200
    assert [p["n"] for p in perf.over_time] == [300, 300, 300, 300]
    assert [p["end"] for p in perf.over_time] == [T0 + 60, T0 + 120, T0 + 180, T0 + 240]
    direct = run_monitor(engine, "telco", reference=reference, window="60s", end=T0 + 60,
                         alerts=False, n_boot=50)
    assert direct.performance is not None
    assert perf.over_time[0]["value"] == pytest.approx(direct.performance.value, abs=1e-12)
