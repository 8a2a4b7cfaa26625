"""``python -m mlwright.cli.compile_kernels`` (run by the Makefile once installed) leaves every
numba kernel in numba's cache: a later process loads them instead of compiling."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# slow: compiles every kernel from nothing (about 5 s of one core).
pytestmark = pytest.mark.slow


def _run(cache, code: str) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout


def test_the_kernels_are_compiled_into_the_cache_and_loaded_from_it(tmp_path) -> None:
    _run(tmp_path, "from mlwright.evaluate.kernels import compile_kernels; compile_kernels()")
    cached = {p.name.split("-")[0] for p in tmp_path.rglob("*.nbi")}
    assert {"_treekernel.walk", "_treeshap_kernel.shap_rows",
            "_treeshap_kernel.expected"} <= cached
    # A new process: numba's dispatchers load every signature, none is compiled.
    out = _run(tmp_path, (
        "from mlwright.evaluate.kernels import compile_kernels; compile_kernels()\n"
        "from mlwright.search import _treekernel as w\n"
        "from mlwright.evaluate.explain import _treeshap_kernel as s\n"
        "stats = [f.stats for f in (w.walk, s.shap_rows, s.expected, s.depths)]\n"
        "print(sum(len(x.cache_misses) for x in stats), "
        "sum(sum(x.cache_hits.values()) for x in stats))"))
    misses, hits = map(int, out.split())
    assert misses == 0 and hits >= 4
