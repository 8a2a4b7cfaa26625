"""Charts of the report: what a reader sees must not mislead (issue 14, point 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import mlwright as mw
from mlwright.datasets import load_suite
from mlwright.evaluate.plots import dependence, leaderboard_chart


def test_one_failed_trial_does_not_squash_the_leaderboard(telco_run: mw.TrainResult) -> None:
    board = telco_run.leaderboard.copy()
    metric = next(c for c in ("roc_auc", "log_loss") if c in board)
    worst = board[metric].min() - 15 if metric == "roc_auc" else board[metric].max() + 15
    bad = board.iloc[[0]].assign(trial=999, weight=0.0, **{metric: worst})
    fig = leaderboard_chart(pd.concat([board, bad], ignore_index=True), metric)
    lo, hi = fig["layout"]["xaxis"]["range"]
    good = board[metric].dropna()
    assert lo <= good.min() and hi >= good.max()  # every real trial on the axis ...
    assert not lo <= worst <= hi                   # ... the outlier off it,
    assert any("off scale" in t for t in fig["data"][0]["text"])  # its value written out
    assert hi - lo < 2 * (good.max() - good.min()) + 0.01


def test_date_dependence_is_in_time_order_without_midnight_times() -> None:
    dates = pd.to_datetime(load_suite("mpls_person_search", nrows=300)["date"]).dt.normalize()
    frame = pd.DataFrame({"value": dates.sample(frac=1, random_state=0).to_numpy(),
                          "contribution": np.random.default_rng(0).normal(size=len(dates))})
    fig = dependence(frame, "date")
    x = fig["data"][0]["x"]
    assert x == sorted(x) and not any("00:00:00" in v for v in x)
    assert fig["layout"]["xaxis"]["type"] == "date"
    # Each point keeps its own contribution after the sort.
    given = sorted(zip(frame["value"].dt.strftime("%Y-%m-%d"), frame["contribution"].round(5),
                       strict=True))
    assert sorted(zip(x, fig["data"][0]["y"], strict=True)) == given
