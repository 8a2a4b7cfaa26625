"""The evaluation report: files, contents, chromium rendering, rebuild from a run folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import mlwright as mw
from browser import render  # tests/browser.py
from mlwright.cli import app
from mlwright.evaluate.report import Evaluation, evaluate
from mlwright.run import load_run


@pytest.fixture(scope="module")
def telco_eval(telco_run: mw.TrainResult,
               telco_split: tuple[pd.DataFrame, pd.DataFrame]) -> Evaluation:
    train, test = telco_split
    return evaluate(telco_run, data=train, test=test, sensitive=["female"], bootstrap=300)


@pytest.fixture(scope="module")
def ames_eval(ames_run: mw.TrainResult,
              ames_split: tuple[pd.DataFrame, pd.DataFrame]) -> Evaluation:
    return evaluate(ames_run, data=ames_split[0], test=ames_split[1], bootstrap=300)


@pytest.mark.parametrize("name", ["telco_eval", "ames_eval"])
def test_report_renders_every_chart_offline(name: str, request: pytest.FixtureRequest,
                                           tmp_path: Path) -> None:
    ev: Evaluation = request.getfixturevalue(name)
    paths = ev.write(tmp_path)
    html = paths["report"].read_text(encoding="utf-8")
    assert html.count("* plotly.js v") == 1 and "<script src" not in html
    errors, page = render(paths["report"])
    assert errors == []
    assert page.requests == []  # nothing from the network
    assert page.charts_state == "done"
    assert page.chart_divs >= 8 and page.unrendered == []
    assert len(page.charts) == page.chart_divs
    for section in ("Leaderboard", "Metrics", "Honesty check", "Explanations", "Fairness",
                    "Data contract", "Lineage"):
        assert section in page.text
    assert ev.contract_summary and ev.lineage["data_fingerprint"] in page.text


def test_report_files_hold_metrics_intervals_and_honesty(telco_eval: Evaluation,
                                                         tmp_path: Path) -> None:
    paths = telco_eval.write(tmp_path)
    data = json.loads(paths["evaluation"].read_text())
    assert data["task"] == "binary" and data["metric"] == "roc_auc"
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                 "average_precision", "log_loss", "brier", "mcc"):
        m = data["oof"]["metrics"][name]
        assert m["low"] <= m["value"] <= m["high"]
        assert name in data["test"]["metrics"]
    h = data["honesty"][0]
    assert h["metric"] == "roc_auc" and h["n_test"] == data["test"]["n_rows"]
    assert h["inside"] == (h["interval"]["low"] <= h["test_score"] <= h["interval"]["high"])
    card = paths["model_card"].read_text()
    for heading in ("## Intended use", "## Training data", "## Metrics", "## Honesty check",
                    "## Fairness", "## Limitations", "## Lineage"):
        assert heading in card
    assert "### female" in card and "Demographic parity" in card
    assert telco_eval.explanation is not None and len(telco_eval.explanation.importance)


def test_multiclass_has_macro_weighted_and_per_class(tmp_path: Path) -> None:
    from mlwright.datasets import load_suite

    df = load_suite("hpc_jobs", nrows=800)
    run = mw.train(df, "class", n_trials=1, time_budget=30, families=["lightgbm"])
    ev = evaluate(run, data=df, bootstrap=200, explain=False)
    assert {"f1_macro", "f1_weighted", "precision_macro", "recall_weighted", "roc_auc_macro",
            "log_loss"} <= set(ev.oof.values)
    assert list(ev.oof.per_class["class"]) == [str(c) for c in run.model.classes]
    assert ev.oof.per_class["support"].sum() == ev.oof.n_rows
    errors, page = render(ev.write(tmp_path)["report"])
    assert errors == [] and page.unrendered == [] and "Per class" in page.text


def test_save_keeps_an_aligned_sample_in_the_manifest(mpls_run: mw.TrainResult,
                                                      mpls: pd.DataFrame,
                                                      mpls_folder: Path) -> None:
    manifest = json.loads((mpls_folder / "manifest.json").read_text())
    assert "sample.parquet" in manifest
    sample = pd.read_parquet(mpls_folder / "sample.parquet")
    assert list(sample.columns) == list(mpls.columns)
    # The index is the row in oof.parquet: the same rows and targets.
    oof = pd.read_parquet(mpls_folder / "oof.parquet")
    assert (oof.loc[sample.index, "y"].to_numpy() == sample["personSearch"].to_numpy()).all()
    assert (mpls.loc[sample.index, "race"].to_numpy() == sample["race"].to_numpy()).all()


def test_fairness_on_mpls_appears_in_the_rebuilt_report(mpls_folder: Path,
                                                        tmp_path: Path) -> None:
    """`mlwright report RUN --sensitive race --sensitive gender` from the run folder alone."""
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(mpls_folder), "--sensitive", "race",
                                      "--sensitive", "gender", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    data = json.loads((out / "evaluation.json").read_text())
    assert [f["column"] for f in data["fairness"]] == ["race", "gender"]
    race = {g["group"] for g in data["fairness"][0]["groups"]}
    assert {"Black", "White", "East African"} <= race
    assert {"demographic_parity", "equal_opportunity"} <= set(data["fairness"][0]["ratios"])
    errors, page = render(out / "report.html")
    assert errors == [] and page.unrendered == []
    assert "By race" in page.text and "By gender" in page.text
    assert "Demographic parity" in page.text and "Equal opportunity" in page.text
    assert "### race" in (out / "model_card.md").read_text()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlwright", *args], capture_output=True,
                          text=True, timeout=600)


def test_report_cli_errors_name_the_problem(mpls_folder: Path, tmp_path: Path) -> None:
    """Bad input gives one clear message and no traceback (the real console script)."""
    typo = _cli("report", str(mpls_folder), "--sensitive", "rase", "--out", str(tmp_path))
    assert typo.returncode != 0 and "Traceback" not in typo.stderr + typo.stdout
    assert "'rase'" in typo.stderr and "'race'" in typo.stderr
    missing = _cli("report", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "model.joblib" in missing.stderr


def test_mw_evaluate_on_a_run_folder(mpls_folder: Path) -> None:
    run = load_run(mpls_folder)
    assert run.sample is not None and run.history and run.folder == mpls_folder
    ev = mw.evaluate(mpls_folder, bootstrap=200, explain=False)
    assert ev.oof.n_rows == int(run.oof["in_validation"].sum())
    assert ev.to_dict()["oof"]["metrics"]["roc_auc"]["value"] == pytest.approx(
        ev.oof["roc_auc"].value)


def test_a_holdout_model_card_says_the_final_model_was_not_refit(
        telco_split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Issue 14: with one holdout the card claimed "the final model saw all of them", and
    the class table under the training-row count added up to the holdout's rows."""
    train = telco_split[0]
    run = mw.train(train, "churn", time_budget=60, n_trials=2, families=["linear"],
                   cv="holdout", seed=0)
    ev = evaluate(run, train, explain=False)
    d = ev.data_summary
    assert d["validation"] == "holdout"
    assert d["validated_rows"] + d["fit_rows"] == len(train)
    assert sum(c["count"] for c in d["classes"]) == d["n_rows"] == len(train)
    card = ev.model_card()
    assert "saw all of them" not in card and "not refit" in card
    assert f"trained on the other {d['fit_rows']:,} rows" in card
    kfold = evaluate(mw.train(train, "churn", time_budget=60, n_trials=2,
                              families=["linear"], cv=3, seed=0), train, explain=False)
    assert "refit on all of them" in kfold.model_card()
