"""The run folder: a trained run saved and loaded back whole, its manifest refusing a
tampered file, missing files named, and ``mlwright.run`` staying below every stage."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.exceptions import IntegrityError, MlwrightError, RegistryError
from mlwright.run import RunFolder, TrainResult, file_sha256, load_run


@pytest.fixture(scope="module")
def run(telco: pd.DataFrame) -> TrainResult:
    return mw.train(telco.head(400), "churn", time_budget=30, n_trials=2,
                    families=["linear"], seed=0, n_jobs=1)


@pytest.fixture(scope="module")
def folder(run: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run.save(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture
def copy(folder: Path, tmp_path: Path) -> RunFolder:
    """A run folder of this test's own, to damage."""
    return RunFolder(shutil.copytree(folder, tmp_path / "run"))


def test_save_writes_the_named_files_and_hashes_them(run: TrainResult, folder: Path) -> None:
    rf = RunFolder(folder)
    written = sorted(p.name for p in folder.iterdir())
    assert written == sorted([*RunFolder.TRAINING_FILES, RunFolder.MANIFEST])
    manifest = rf.read_manifest()
    assert sorted(manifest) == sorted(RunFolder.TRAINING_FILES)
    assert manifest == {n: file_sha256(folder / n) for n in RunFolder.TRAINING_FILES}
    assert rf.hashes() == manifest
    metrics = rf.read_metrics()
    assert metrics["history"] == [list(h) for h in run.search.history] != []


def test_load_gives_back_what_was_saved(run: TrainResult, folder: Path,
                                        telco: pd.DataFrame) -> None:
    loaded = load_run(folder)
    assert loaded.folder == folder and loaded.search is None
    for name in ("target", "task", "metric", "cv_score", "cv_scores", "params", "history"):
        assert getattr(loaded, name) == getattr(run, name), name
    assert loaded.timings == pytest.approx(run.timings)
    pd.testing.assert_frame_equal(loaded.oof, run.oof)
    # CSV keeps no dtypes (an empty string reads back as NaN): as read from a CSV of it.
    as_csv = pd.read_csv(io.StringIO(run.leaderboard.to_csv(index=False)))
    pd.testing.assert_frame_equal(loaded.leaderboard, as_csv)
    assert loaded.sample is not None and run.sample is not None
    assert list(loaded.sample.index) == list(run.sample.index)
    assert loaded.contract is not None and run.contract is not None
    assert loaded.contract.fingerprint == run.contract.fingerprint
    rows = telco.tail(50).drop(columns=["churn"])
    np.testing.assert_array_equal(loaded.predict_proba(rows), run.predict_proba(rows))


def test_a_loaded_run_saves_again_with_its_history(folder: Path, tmp_path: Path) -> None:
    """Regression: the history lived on the search only, so a loaded run (no search) saved
    again wrote an empty history, and the rebuilt report lost its search-progress chart."""
    again = load_run(folder).save(tmp_path / "again")
    assert RunFolder(again).read_metrics() == RunFolder(folder).read_metrics()


@pytest.mark.parametrize("name", [RunFolder.MODEL, RunFolder.OOF, RunFolder.CONTRACT])
def test_a_tampered_file_is_refused_before_unpickling(copy: RunFolder, name: str) -> None:
    with copy.file(name).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match=rf"{name.replace('.', '[.]')} does not match"):
        load_run(copy.path)
    with pytest.raises(IntegrityError, match=name.replace(".", "[.]")):
        copy.verify()


def test_missing_files_are_named(copy: RunFolder) -> None:
    copy.file(RunFolder.LEADERBOARD).unlink()  # recorded in the manifest
    with pytest.raises(IntegrityError, match=r"leaderboard\.csv is missing"):
        load_run(copy.path)
    copy.file(RunFolder.OOF).unlink()
    copy.write_manifest()  # consistent hashes, but not a whole run folder
    with pytest.raises(MlwrightError, match=r"oof\.parquet is missing.*Train again"):
        load_run(copy.path)
    copy.file(RunFolder.MANIFEST).unlink()
    with pytest.raises(IntegrityError, match=r"manifest\.json is missing"):
        load_run(copy.path)
    copy.file(RunFolder.MODEL).unlink()
    with pytest.raises(RegistryError, match=r"holds no model\.joblib"):
        load_run(copy.path)


def test_registered_hashes_override_the_manifest(copy: RunFolder) -> None:
    """A tampered folder may rewrite its own manifest; hashes recorded elsewhere catch it."""
    recorded = copy.read_manifest()
    with copy.file(RunFolder.OOF).open("ab") as fh:
        fh.write(b"\0")
    copy.write_manifest()
    assert copy.load_model() is not None
    with pytest.raises(IntegrityError, match=r"oof\.parquet does not match"):
        copy.load_model(expected=recorded)
    with pytest.raises(IntegrityError, match="No recorded hash"):
        copy.load_model(expected={RunFolder.OOF: recorded[RunFolder.OOF]})


def test_run_module_imports_no_stage() -> None:
    """``mlwright.run`` is a foundation: importing it loads no stage and no pandas (the CLI
    and the server import it at start)."""
    code = ("import sys, json, mlwright.run; print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith(('mlwright.', 'pandas', 'numpy')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == ["mlwright.exceptions", "mlwright.run"]
