"""``python -m mlwright.cli.compile_kernels``: the numba kernels compiled into numba's cache
(:func:`mlwright.evaluate.kernels.compile_kernels`). A process entry point, as the Makefile
runs it after installing; run it once after a ``pip install`` of your own, or the first
training compiles them (about 4 s)."""

from __future__ import annotations

from mlwright.cli._common import console
from mlwright.evaluate.kernels import compile_kernels

if __name__ == "__main__":
    took = compile_kernels()
    console.print("numba kernels ready: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()), highlight=False)
