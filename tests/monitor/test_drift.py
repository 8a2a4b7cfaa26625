"""Replaying the held-out part of telco_churn through the prediction log."""

from __future__ import annotations

import numpy as np
import pytest
from monitor_replay import log_rows  # tests/monitor/ is on sys.path

from mlwright.config import MonitorConfig
from mlwright.monitor import run_monitor
from mlwright.store import open_database
from telco_drift import shifted  # tests/telco_drift.py

N_WINDOWS = 20


@pytest.fixture(scope="module")
def replay(holdout_run, tmp_path_factory):
    """The test part logged twice: as is (model telco) and shifted (model shifted)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'log.db'}"
    engine = open_database(url)
    log_rows(engine, holdout_run, holdout_run.test, model="telco")
    log_rows(engine, holdout_run, shifted(holdout_run.test), model="shifted")
    return url


def _windows(n_rows: int, n: int) -> list[tuple[int, float]]:
    """(size, end ts) of n consecutive equal windows over rows logged 1 s apart."""
    size = n_rows // n
    return [(size, 1.7e9 + (i + 1) * size - 1) for i in range(n)]


def test_no_drift_in_19_of_20_windows(holdout_run, replay):
    flagged = []
    for size, end in _windows(len(holdout_run.test), N_WINDOWS):
        report = run_monitor(replay, "telco", reference=holdout_run.folder, window=size, end=end,
                             alerts=False, n_boot=0)
        assert report.n_records == size
        assert report.drift.method == "test"  # ~105 rows: statistical tests
        flagged.append(report.drifted_features)
        assert not report.dataset_drift
    windows_with_drift = sum(bool(f) for f in flagged)
    assert windows_with_drift <= 1, flagged


def test_without_correction_false_alarms_are_common(holdout_run, replay):
    # Why Holm: uncorrected, ~19 tests at 0.05 flag a feature in most windows by chance.
    config = MonitorConfig(correction="none")
    flagged = [run_monitor(replay, "telco", reference=holdout_run.folder, window=size, end=end,
                           config=config, alerts=False, n_boot=0).drifted_features
               for size, end in _windows(len(holdout_run.test), N_WINDOWS)]
    assert sum(bool(f) for f in flagged) >= 5


@pytest.mark.parametrize("n_windows", [4, 1])
def test_injected_shifts_flag_exactly_the_shifted_columns(holdout_run, replay, n_windows):
    for size, end in _windows(len(holdout_run.test), n_windows):
        report = run_monitor(replay, "shifted", reference=holdout_run.folder, window=size,
                             end=end, alerts=False, n_boot=0)
        assert report.drift.method == ("test" if size <= 1000 else "distance")
        assert sorted(report.drifted_features) == ["contract", "monthly_charges"]
        # drifting features come first in the report
        assert [f.name for f in report.features[:2]] == report.drifted_features


def test_prediction_drift_follows_the_inputs(holdout_run, replay):
    size = len(holdout_run.test)
    clean = run_monitor(replay, "telco", reference=holdout_run.folder, window=size, alerts=False,
                        n_boot=0)
    moved = run_monitor(replay, "shifted", reference=holdout_run.folder, window=size,
                        alerts=False, n_boot=0)
    assert clean.prediction_drift is not None and not clean.prediction_drift.drifted
    # Month-to-month contracts churn most; swapping them away moves the churn probabilities.
    assert moved.prediction_drift.drifted
    assert moved.prediction_drift.result.statistic > 2 * clean.prediction_drift.result.statistic


def test_time_windows_and_detector_choice(holdout_run, replay):
    end = 1.7e9 + len(holdout_run.test) - 1
    report = run_monitor(replay, "telco", reference=holdout_run.folder, window="10m", end=end,
                         alerts=False, n_boot=0)
    assert report.n_records == 600  # one record per second
    psi = run_monitor(replay, "shifted", reference=holdout_run.folder, window="10m", end=end,
                      config=MonitorConfig(numeric_detector="psi", categorical_detector="psi"),
                      alerts=False, n_boot=0)
    assert {f.result.detector for f in psi.features} == {"psi"}
    assert {"contract", "monthly_charges"} <= set(psi.drifted_features)
    values = np.array([f.result.statistic for f in psi.features])
    assert np.isfinite(values).all()


def test_large_windows_compare_a_stable_uniform_sample(holdout_run, replay):
    config = MonitorConfig(sample_rows=1000)
    size = len(holdout_run.test)
    first = run_monitor(replay, "shifted", reference=holdout_run.folder, window=size,
                        config=config, alerts=False, n_boot=0)
    again = run_monitor(replay, "shifted", reference=holdout_run.folder, window=size,
                        config=config, alerts=False, n_boot=0)
    assert first.n_records == first.n_scored == size
    assert 850 < first.n_sampled < 1150 and first.n_sampled == again.n_sampled
    assert sorted(first.drifted_features) == ["contract", "monthly_charges"]
    assert [f.result.statistic for f in first.features] == [
        f.result.statistic for f in again.features]
