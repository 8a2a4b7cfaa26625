"""Data-window policies: what a retrain learns from, and that the comparison rows stay out."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlwright.config import render_config
from mlwright.exceptions import ConfigError, LoopError
from mlwright.loop.holdout import PART, parse_policy, prepare_data


def test_parse_policy() -> None:
    assert parse_policy("all") == ("all", None)
    assert parse_policy("last:500") == ("last", 500)
    assert parse_policy("days:30") == ("days", 30)
    assert parse_policy("reference+recent") == ("reference+recent", None)
    assert parse_policy("reference+recent:200") == ("reference+recent", 200)
    for bad in ("last", "days:0", "everything"):
        with pytest.raises(ConfigError, match="data_window"):
            parse_policy(bad)


def test_windows_and_disjoint_comparison_rows(make_project: Any, weak: Any, churn: Any,
                                             traffic: Any) -> None:
    config = make_project(weak, traffic=False)
    live = churn["live"]                       # 600 labelled rows
    old_ts = time.time() - 10 * 86400
    traffic(config, weak, "1", live.iloc[:300], ts=old_ts)
    traffic(config, weak, "1", live.iloc[300:])
    source = churn["source"]
    split = prepare_data(config)
    parts = split.eval[PART].value_counts().to_dict()
    assert parts["recent"] == 300              # eval_share 0.5 of the 600 labelled rows
    n_holdout = parts["holdout"]
    assert 0.1 * len(source) < n_holdout < 0.3 * len(source)
    assert len(split.train) == len(source) - n_holdout + 300
    # The newest labelled rows are compared on; only the older ones are trained on.
    recent = split.eval[split.eval[PART] == "recent"]
    assert recent["monthly_charges"].tolist() == live["monthly_charges"].iloc[300:].tolist()
    assert recent["churn"].tolist() == live["churn"].iloc[300:].tolist()
    assert split.train["monthly_charges"].iloc[-300:].tolist() == \
        live["monthly_charges"].iloc[:300].tolist()
    assert list(split.train.columns) == list(source.columns)
    assert split.train["tenure"].dtype.kind in "if"

    last = prepare_data(config.model_copy(update={"loop": config.loop.model_copy(
        update={"data_window": "last:400"})}))
    assert len(last.train) == 400
    def days(n: int) -> Any:
        return prepare_data(config.model_copy(update={"loop": config.loop.model_copy(
            update={"data_window": f"days:{n}"})}))

    # Without loop.time_column only log rows have a time: the older 300 are 10 days old.
    assert len(days(15).train) == 300
    with pytest.raises(LoopError, match="days:5"):
        days(5)
    recent_only = prepare_data(config.model_copy(update={"loop": config.loop.model_copy(
        update={"data_window": "reference+recent"})}), since=time.time() - 86400)
    assert len(recent_only.train) == len(source) - n_holdout


def test_run_once_from_the_command_line(make_project: Any, weak: Any, tmp_path: Path
                                        ) -> None:
    config = make_project(weak, traffic=False)
    path = tmp_path / "mlwright.toml"
    path.write_text(render_config(config))
    out = subprocess.run([sys.executable, "-m", "mlwright", "run", str(path), "--once"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "webhook" in out.stdout and "No trigger fired" in out.stdout
    wrong = subprocess.run([sys.executable, "-m", "mlwright", "retrain", "other", "--config",
                            str(path)], capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 2 and "not 'other'" in " ".join(wrong.stderr.split())
