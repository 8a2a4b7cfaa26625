"""Issue 18, point 2: a search's trials on two Dask worker processes (real LocalCluster on
loopback) share one study: exactly N trials, no configuration twice, the budget holds, and
ensembling and the refit happen once, on the client. Real data: telco_churn."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import mlwright as mw
from mlwright.cluster import connect
from mlwright.exceptions import ConfigError
from mlwright.search.portfolio import config_key

pytestmark = pytest.mark.slow  # a Dask cluster of two processes


def _workers(client) -> set[str]:
    return set(client.scheduler_info(n_workers=-1)["workers"])


def test_two_workers_run_exactly_n_trials_each_once(dask_client, telco_1000):
    result = mw.train(telco_1000, "churn", n_trials=12, families=["lightgbm", "linear"],
                      seed=0, cluster=dask_client)
    trials = result.search.trials
    assert sorted(t.number for t in trials) == list(range(12))
    keys = [config_key(t.family, t.params, t.target_transform) for t in trials]
    assert len(set(keys)) == 12  # no configuration ran twice
    assert all(t.status in ("complete", "pruned") for t in trials), \
        [(t.number, t.status, t.error) for t in trials]
    # Every trial ran on a worker of the cluster, and both workers took trials.
    assert {t.worker for t in trials} == _workers(dask_client)
    # Ensembling and the refit ran once, here: members refit on all rows (no fold models),
    # among the complete trials, their weights summing to one.
    complete = {t.number for t in trials if t.status == "complete"}
    members = result.model.describe()
    assert members and {m["trial"] for m in members} <= complete
    assert all("folds" not in m for m in members)
    assert sum(m["weight"] for m in members) == pytest.approx(1.0)
    assert result.cv_score > 0.75  # roc_auc of telco_churn's first 1,000 rows
    proba = result.model.predict_proba(telco_1000.drop(columns="churn").head(50))
    assert proba.shape == (50, 2)


def test_the_budget_holds_across_workers(dask_client, telco_1000):
    budget = 12.0
    result = mw.train(telco_1000, "churn", time_budget=budget,
                      families=["lightgbm", "linear", "random_forest"], seed=1,
                      cluster=dask_client)
    trials = result.search.trials
    # The client plans every trial's deadline, wherever it runs: never past the run's
    # (seconds since the run started). Wall time is measured in benchmarks/budget.py.
    deadlines = [t.deadline for t in trials if t.status != "skipped"]
    assert deadlines and all(d is not None and d <= budget + 1e-9 for d in deadlines), deadlines
    assert trials and all(t.status != "running" for t in trials)
    assert {t.worker for t in trials if t.status != "skipped"} <= _workers(dask_client)
    assert sorted(t.number for t in trials) == list(range(len(trials)))


def test_train_reads_the_cluster_from_mlwright_toml(dask_client, telco_1000, tmp_path,
                                                     monkeypatch, capsys):
    from distributed import get_task_stream

    from mlwright.cli import main

    data = tmp_path / "telco.csv"
    telco_1000.to_csv(data, index=False)
    address = dask_client.scheduler.address
    (tmp_path / "mlwright.toml").write_text(
        f'[project]\nname = "telco"\ncluster = "{address}"\n\n[data]\nsource = "{data}"\n'
        f'target = "churn"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["mlwright", "train", str(data), "--target", "churn",
                                      "--trials", "4", "--families", "lightgbm",
                                      "--no-register", "-o", str(tmp_path / "run")])
    with get_task_stream(dask_client) as stream:
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr()
    ran = [t for t in stream.data if str(t["key"]).startswith("mlwright-trial-")]
    assert len(ran) == 4
    assert (Path(tmp_path) / "run" / "model.joblib").exists()


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"Could not reach the Dask scheduler at "
                                          r"'tcp://127.0.0.1:9'.*dask scheduler"), \
            connect("tcp://127.0.0.1:9", timeout=2):
        pass


def test_a_worker_killed_mid_search_loses_no_trial(dask_client, telco_1000):
    """One worker process is killed (SIGKILL) while trials run: Dask runs its trial again
    on a worker alive (the nanny starts a new one); the search still ends with exactly N
    trials, each once."""
    import os
    import signal

    pids = dask_client.run(os.getpid)
    killed: list[str] = []

    def on_trial(record, search) -> None:
        if killed:
            return
        # A worker in the middle of a trial: its trial must not be lost.
        busy = [address for address, keys in dask_client.processing().items()
                if any(str(k).startswith("mlwright-trial-") for k in keys)]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    result = mw.train(telco_1000, "churn", n_trials=8, families=["lightgbm", "linear"],
                      seed=3, cluster=dask_client, on_trial=on_trial)
    assert killed
    trials = result.search.trials
    assert sorted(t.number for t in trials) == list(range(8))
    keys = {config_key(t.family, t.params, t.target_transform) for t in trials}
    assert len(keys) == 8
    assert all(t.status in ("complete", "pruned") for t in trials), \
        [(t.number, t.status, t.error) for t in trials]
    dask_client.wait_for_workers(2, timeout=120)  # the nanny's new worker, for later tests


def test_a_trial_whose_worker_took_the_only_copy_of_the_data_runs_again(
        dask_client, telco_1000, monkeypatch, caplog):
    """The search's data down to one copy (Dask keeps one replica of data no task waits
    for), then the worker holding it killed while it runs a trial: the trial is started
    again with the data sent again, under its own number."""
    import os
    import signal

    import mlwright.cluster
    from mlwright.cluster import DaskTrials

    runners: list[DaskTrials] = []

    class Recorded(DaskTrials):
        def open(self, s) -> None:
            super().open(s)
            runners.append(self)

    monkeypatch.setattr(mlwright.cluster, "DaskTrials", Recorded)
    pids = dask_client.run(os.getpid)
    killed: list[str] = []

    def on_trial(record, search) -> None:
        if killed:
            return
        spec = runners[0]._spec
        dask_client.replicate([spec], n=1)
        holder = next(iter(dask_client.who_has([spec])[spec.key]), None)
        keys = dask_client.processing().get(holder, ())
        if holder is not None and any(str(k).startswith("mlwright-trial-") for k in keys):
            os.kill(pids[holder], signal.SIGKILL)
            killed.append(holder)

    with caplog.at_level("WARNING", logger="mlwright.cluster.trials"):
        # Ten trials: each end is a chance to find the data's holder running one.
        result = mw.train(telco_1000, "churn", n_trials=10, families=["lightgbm", "linear"],
                          seed=4, cluster=dask_client, on_trial=on_trial)
    assert killed
    trials = result.search.trials
    assert sorted(t.number for t in trials) == list(range(10))
    assert all(t.status in ("complete", "pruned") for t in trials), \
        [(t.number, t.status, t.error) for t in trials]
    assert "lost its worker; starting it again" in caplog.text
    dask_client.wait_for_workers(2, timeout=120)


def test_workers_with_other_versions_are_named():
    """What connect() refuses: a worker without mlwright, or with another LightGBM (the
    answer of Client.get_versions, as it reads); another patch release of Python is fine."""
    from mlwright.cluster.client import version_mismatches

    client = {"python": "3.11.7.final.0", "mlwright": "0.1.0", "lightgbm": "4.7.0"}
    versions = {"client": {"packages": client},
                "workers": {"tcp://10.0.0.2:4001": {"packages": {**client,
                                                                 "python": "3.11.9.final.0"}},
                            "tcp://10.0.0.3:4001": {"packages": {**client, "mlwright": None,
                                                                 "lightgbm": "4.6.0"}}}}
    assert version_mismatches(versions) == [
        "tcp://10.0.0.3:4001 has mlwright missing (client 0.1.0)",
        "tcp://10.0.0.3:4001 has lightgbm 4.6.0 (client 4.7.0)"]
