"""The served model is out of the garbage collector's way (issue 16): a full collection
walks every tracked object, and with the model in the heap each one held the event loop
for a third of a second or more in the soak. run_server calls settle_heap once the app is
built; checked in a process of its own (freezing would keep this test process's garbage)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a process of its own loads the model (~15 s)

CODE = """
import gc, sys
from mlwright.serve.app import create_app
from mlwright.serve.state import settle_heap
app = create_app(sys.argv[1], database_url=sys.argv[2])
model = app.state.server.champion.active.loaded.model
before = any(o is model for o in gc.get_objects())
settle_heap()
print(before, any(o is model for o in gc.get_objects()), gc.get_freeze_count())
"""


def test_settle_heap_takes_the_loaded_model_out_of_collections(run_a: Path,
                                                               tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CODE, str(run_a),
                           f"sqlite:///{tmp_path / 'log.db'}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after, frozen = done.stdout.split()
    assert (before, after) == ("True", "False")
    assert int(frozen) > 10_000
