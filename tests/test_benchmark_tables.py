"""benchmarks/combine.py: one table from several automl.py runs of the same budget, on the
result files the repository holds."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RESULTS = BENCHMARKS / "results"
RUNS = [RESULTS / f"automl-300s-{tag}-s28.json" for tag in ("agm", "agm2", "agb")]


@pytest.fixture(scope="module")
def combine() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import combine

        yield combine
        for name in ("combine", "automl"):
            sys.modules.pop(name, None)


def test_scores_are_normalized_over_every_system_of_every_file(combine: ModuleType) -> None:
    budget, metas, results = combine.combine([RESULTS / "automl-300s-s28.json", *RUNS])
    assert budget == 300.0
    combine.normalized(results, metas)
    systems = {r["system"] for r in results}
    assert {"mlwright", "flaml", "autogluon-medium_quality",
            "autogluon-best_quality"} <= systems
    for name in metas:
        scores = [r["normalized"] for r in results if r["dataset"] == name]
        assert len(scores) == len({(r["system"]) for r in results if r["dataset"] == name})
        assert max(scores) == pytest.approx(1.0)  # the best of all files, not of one run
    # hpc_jobs: AutoGluon best (another file) beat mlwright, whose own run scored it 1.0.
    hpc = {r["system"]: r["normalized"] for r in results if r["dataset"] == "hpc_jobs"}
    assert hpc["autogluon-best_quality"] == pytest.approx(1.0)
    assert hpc["mlwright"] < 0.99


def test_a_later_file_wins_a_repeated_measurement(combine: ModuleType,
                                                  tmp_path: Path) -> None:
    run = json.loads(RUNS[0].read_text())
    again = {**run, "results": [{**r, "roc_auc": 0.5} if r["dataset"] == "telco_churn" else r
                                for r in run["results"]]}
    later = tmp_path / "again.json"
    later.write_text(json.dumps(again))
    _, _, results = combine.combine([RUNS[0], later])
    telco = [r for r in results if r["dataset"] == "telco_churn"]
    assert len(telco) == 1 and telco[0]["roc_auc"] == 0.5 and telco[0]["source"] == "again.json"


def test_files_of_different_budgets_are_refused(combine: ModuleType, tmp_path: Path) -> None:
    other = tmp_path / "sixty.json"
    other.write_text(json.dumps({**json.loads(RUNS[0].read_text()), "budget": 60}))
    with pytest.raises(SystemExit, match="different budgets"):
        combine.combine([RUNS[0], other])
