"""What the drift summary says: the features it did not check and the detectors it used, on
trump_tweet_source (free text, a date, a constant column, a mostly missing number)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from monitor_replay import log_rows  # tests/monitor/ is on sys.path
from typer.testing import CliRunner

from mlwright.cli import app
from mlwright.config import MonitorConfig
from mlwright.datasets import load_suite
from mlwright.monitor import run_monitor
from mlwright.store import open_database

SKIPPED = {"text": "free text", "created_at": "date", "is_retweet": "constant"}


@dataclass
class Model:  # what log_rows reads
    folder: Path
    model: Any
    features: list[str]


@pytest.fixture(scope="module")
def tweets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, str]:
    """A linear model on 1,200 tweets (a few seconds) and a log of the next 1,500."""
    import mlwright as mw

    df = load_suite("trump_tweet_source")
    train, test = df.iloc[:1200], df.iloc[1200:2700].reset_index(drop=True)
    result = mw.train(train, "source", time_budget=15, n_trials=1, families=["linear"],
                      seed=0)
    folder = tmp_path_factory.mktemp("tweets-run")
    result.save(folder)
    trained = Model(folder, result.model, result.contract.feature_names)
    url = f"sqlite:///{tmp_path_factory.mktemp('tweets-db') / 'log.db'}"
    log_rows(open_database(url), trained, test, model="tweets")
    return trained, url


def test_features_not_checked_are_named_in_the_cli_json_and_html(tweets, tmp_path):
    trained, url = tweets
    assert set(SKIPPED) <= set(trained.features)  # the model does use them
    out, js = tmp_path / "report.html", tmp_path / "report.json"
    result = CliRunner().invoke(app, ["monitor", "tweets", "--window", "300", "--db", url,
                                      "--reference", str(trained.folder), "--out", str(out),
                                      "--json", str(js), "--no-alerts"])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # rich wraps at 80 columns
    line = "text (free text), created_at (date), is_retweet (constant)"
    assert f"Not checked for drift: {line}" in printed
    assert " of 3 features drifted" in printed and "tests: ks (3), holm correction" in printed
    body = json.loads(js.read_text())
    assert body["not_checked"] == list(SKIPPED)
    assert body["dataset_drift"]["skipped"] == [{"name": k, "reason": v}
                                                for k, v in SKIPPED.items()]
    assert {f["name"] for f in body["features"]} == set(trained.features) - set(SKIPPED)
    assert f"Not checked for drift: {line}." in out.read_text()


def test_wording_names_the_detectors_and_where_holm_applied(tweets, tmp_path):
    trained, url = tweets
    # 1,500 records: distances, except the reply id, missing in all but ~190 of them, whose
    # few values get a test (the "auto" rule counts a column's values, not the window).
    report = run_monitor(url, "tweets", reference=trained.folder, window=1500, alerts=False)
    d = report.drift
    used = {f.name: f.result.detector for f in report.features}
    assert used == {"retweet_count": "wasserstein", "favorite_count": "wasserstein",
                    "in_reply_to_user_id_str": "ks"}
    assert d.method == "mixed" and d.correction == "holm"
    assert d.describe() == "distances: wasserstein (2); tests: ks (1), holm correction"
    assert "Kolmogorov-Smirnov (1), Holm correction" in d.describe(long=True)
    assert report.to_dict()["dataset_drift"]["summary"] == d.describe()
    html = report.write_html(tmp_path / "mixed.html").read_text()
    assert "Method: distances: normed Wasserstein (2); tests: Kolmogorov-Smirnov (1), " \
           "Holm correction." in html

    small = run_monitor(url, "tweets", reference=trained.folder, window=300, alerts=False)
    assert small.drift.method == "test"
    assert small.drift.describe() == "tests: ks (3), holm correction"
    plain = run_monitor(url, "tweets", reference=trained.folder, window=1500, alerts=False,
                        config=MonitorConfig(correction="none", small_window=100))
    assert plain.drift.method == "distance" and plain.drift.correction == "none"
    assert plain.drift.describe() == "distances: wasserstein (3)"


def test_a_feature_without_values_in_the_window_is_named_too(tweets):
    trained, url = tweets
    # The last 30 tweets reply to nobody: their reply ids are all missing.
    report = run_monitor(url, "tweets", reference=trained.folder, window=30, alerts=False)
    assert report.drift.n_features == 2
    assert report.drift.skipped == {**SKIPPED,
                                    "in_reply_to_user_id_str": "no values in this window"}
    assert report.to_dict()["not_checked"] == [*SKIPPED, "in_reply_to_user_id_str"]
