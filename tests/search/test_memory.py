"""Memory a search no longer needs: trials outside the ensemble's candidates let go of their
predictions, and freed heap memory goes back to the system between trials."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import mlwright as mw
from mlwright.search import memory, session


def test_trials_outside_the_candidates_let_go_of_their_predictions(telco, monkeypatch):
    # Room for three trials' out-of-fold predictions (telco: two classes, every row).
    monkeypatch.setattr(session, "CANDIDATE_CELLS", 3 * len(telco) * 2)
    monkeypatch.setattr(session, "MIN_CANDIDATES", 2)
    result = mw.train(telco, target="churn", n_trials=8, seed=1, time_budget=120,
                      families=["lightgbm", "linear"])
    trials = result.search.trials
    complete = sorted((r for r in trials if r.status == "complete"), key=lambda r: r.loss)
    assert len(complete) > 4
    assert all(r.oof is not None for r in complete[:3])
    # The last trial keeps its own until a next one finishes (on_trial hooks read it).
    assert all(r.oof is None for r in complete[3:] if r is not trials[-1])
    # The ensemble was chosen among the three best, and predicts.
    assert set(result.search.weights) <= {r.number for r in complete[:3]}
    assert result.predict_proba(telco.head(5)).shape == (5, 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_freed_heap_memory_goes_back_to_the_system():
    # Blocks under glibc's mmap threshold live on the heap; freeing every other one leaves
    # holes that stay resident until trimmed.
    blocks = [bytearray(64 * 1024) for _ in range(4096)]  # 256 MiB, each page touched
    del blocks[::2]
    before = memory.resident_bytes()
    assert before is not None
    assert memory.release_freed_memory(min_growth=0)
    after = memory.resident_bytes()
    assert after is not None and before - after > 64 * 2**20
    assert len(blocks) == 2048  # the other half is still there


def test_no_trim_before_memory_grew_enough():
    memory.release_freed_memory(min_growth=0)  # sets the mark
    assert not memory.release_freed_memory(min_growth=2**40)


def test_catboost_one_hot_encodes_categories_on_large_tables():
    # Target statistics (CTRs) cost memory per row and class, which CatBoost keeps.
    from mlwright.data.kinds import Task
    from mlwright.search._base import FitContext
    from mlwright.search.families.boosting import ONE_HOT_ROWS, CatBoostFamily

    family = CatBoostFamily()
    params = family.default_configs(FitContext(Task.MULTICLASS, 4, 100, 5, n_ordinal=4))[0]
    params = {k.split("__", 1)[1]: v for k, v in params.items()}

    def built(rows: int, n_ordinal: int = 4):
        ctx = FitContext(Task.MULTICLASS, 4, rows, 5, n_ordinal=n_ordinal)
        return family.build(dict(params), ctx)

    assert built(ONE_HOT_ROWS).one_hot_max_size == 255
    assert built(ONE_HOT_ROWS - 1).one_hot_max_size is None  # CatBoost's own default
    assert built(ONE_HOT_ROWS, n_ordinal=0).one_hot_max_size is None


def test_a_catboost_model_pickled_before_the_parameter_still_clones():
    from sklearn.base import clone

    from mlwright.search.families.boosting import CatBoostModel

    state = CatBoostModel(n_ordinal=2).__getstate__()
    state.pop("one_hot_max_size")  # as an earlier version pickled it
    old = CatBoostModel.__new__(CatBoostModel)
    old.__setstate__(state)
    assert repr(old) == "CatBoostModel(n_ordinal=2)"
    assert clone(old).get_params()["one_hot_max_size"] is None


def test_nothing_of_a_search_outlives_its_result(tmp_path):
    # In a fresh process, where the search imports Optuna itself: Optuna keeps the error
    # of an optional import it tried (redis), whose traceback held the frame that imported
    # it, and once that was the search's, every trial's predictions stayed alive.
    script = tmp_path / "outlive.py"
    script.write_text(
        "import gc, sys\n"
        "import mlwright as mw\n"
        "from mlwright.datasets import load_suite\n"
        "from mlwright.search.records import TrialRecord\n"
        "assert 'optuna' not in sys.modules\n"
        "telco = load_suite('telco_churn', nrows=600)\n"
        "result = mw.train(telco, target='churn', n_trials=3, seed=0, time_budget=60,\n"
        "                  families=['linear'])\n"
        "assert 'optuna' in sys.modules and result.search.trials\n"
        "del result\n"
        "gc.collect()\n"
        "print(sum(isinstance(o, TrialRecord) for o in gc.get_objects()))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.split()[-1] == "0"


def test_a_holdout_keeps_predictions_for_its_validation_rows_only(telco):
    result = mw.train(telco, target="churn", n_trials=4, seed=0, time_budget=60, cv="holdout",
                      families=["linear", "lightgbm"])
    search = result.search
    validated = search.oof_mask
    assert validated.sum() == len(telco) // 5
    complete = [r for r in search.trials if r.status == "complete"]
    assert len(complete) == 4
    for r in complete:  # a fifth of the rows kept, and spread back to every row
        assert r.oof is not None and len(r.oof) == validated.sum()
        every_row = search.trial_oof(r)
        assert every_row.shape == (len(telco), 2) and not every_row[~validated].any()
        assert r.loss == pytest.approx(search.metric.loss(search.y_encoded[validated],
                                                          every_row[validated]))
    # The ensemble's predictions on every row are its members' blend.
    blend = sum(search.trial_oof(r) * search.weights[r.number] for r in complete
                if r.number in search.weights)
    np.testing.assert_allclose(search.oof, blend, atol=1e-12)
    assert result.cv_score == pytest.approx(search.metric.to_score(
        search.metric.loss(search.y_encoded[validated], blend[validated])))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory from /proc")
def test_freed_arrow_memory_goes_back_to_the_system():
    # pandas keeps text in Arrow buffers; Arrow's pool (mimalloc) keeps what is freed.
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(np.arange(1_000_000).astype(str))
    memory.release_freed_memory(min_growth=0)  # nothing freed before this test counts
    copies = [pc.utf8_upper(text) for _ in range(16)]  # about 190 MB of Arrow buffers
    assert pa.total_allocated_bytes() > 150 * 2**20
    del copies
    before = memory.resident_bytes()
    assert before is not None
    assert memory.release_freed_memory(min_growth=0)
    after = memory.resident_bytes()
    assert after is not None and before - after > 100 * 2**20
    assert pc.utf8_upper(text)[-1].as_py() == "999999"  # what is still held is intact


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory from /proc")
def test_catboost_hands_back_what_a_fit_freed(tmp_path):
    # CatBoost's own mimalloc, in a fresh process where the search's setting comes before
    # CatBoost's import: without it, this fit's 160 MB stayed resident after the model went.
    script = tmp_path / "catboost_fit.py"
    script.write_text(
        "import gc\n"
        "import pandas as pd\n"
        "from mlwright.data.kinds import Task\n"
        "from mlwright.datasets import load_suite\n"
        "from mlwright.search import memory\n"
        "assert memory.purge_promptly(memory.PROMPT_PURGE_ROWS)\n"
        "from mlwright.search.families.boosting import CatBoostModel\n"
        "df = load_suite('military', nrows=20_000, seed=3)\n"
        "codes = pd.DataFrame({c: pd.factorize(df[c])[0] for c in df.columns})\n"
        "rows = codes.groupby(list(codes.columns)).size().reset_index(name='w')\n"
        "X = rows.drop(columns=['branch', 'w']).to_numpy(float)\n"
        "memory.release_freed_memory(min_growth=0)\n"
        "before = memory.resident_bytes()\n"
        "model = CatBoostModel(task=Task.MULTICLASS, n_ordinal=3, iterations=3000, depth=8,\n"
        "                      n_jobs=2, one_hot_max_size=255)\n"
        "model.fit(X, rows['branch'].to_numpy(), sample_weight=rows['w'].to_numpy(float))\n"
        "fitted = memory.resident_bytes()\n"
        "del model\n"
        "gc.collect()\n"
        "print(fitted - before, memory.resident_bytes() - before)\n")
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_PURGE_DELAY"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, check=True, env=env)
    grew, left = (int(v) for v in out.stdout.split()[-2:])
    assert grew > 60 * 2**20  # the fit's working memory
    assert left < 60 * 2**20  # most of it handed back once the model is gone


def test_small_tables_keep_mimallocs_purge_delay(monkeypatch):
    # Purging at once slowed CatBoost's small-table fits 1.7x (ames_housing): only a large
    # table's search asks for it, and a user's own setting is never overridden.
    monkeypatch.delenv("MIMALLOC_PURGE_DELAY", raising=False)
    assert not memory.purge_promptly(memory.PROMPT_PURGE_ROWS - 1)
    assert "MIMALLOC_PURGE_DELAY" not in os.environ
    assert memory.purge_promptly(memory.PROMPT_PURGE_ROWS)
    assert os.environ["MIMALLOC_PURGE_DELAY"] == "0"
    monkeypatch.setenv("MIMALLOC_PURGE_DELAY", "25")
    assert not memory.purge_promptly(10 * memory.PROMPT_PURGE_ROWS)
    assert os.environ["MIMALLOC_PURGE_DELAY"] == "25"
