"""The compiled loop of :mod:`mlwright.search.treewalk` (imports numba: load it lazily)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

# LightGBM's kZeroThreshold: a float literal (1e-35f) read as a double.
_ZERO = float(np.float32(1e-35))
# Rows per block: a block's rows stay in L1 while every tree walks them.
_BLOCK = 64


@numba.njit(nogil=True, cache=True)
def walk(X: Any, lo: int, hi: int, roots: Any, tree_col: Any, feature: Any, threshold: Any,
         dtype: Any, left: Any, right: Any, cat_start: Any, cat_len: Any, cat_bits: Any,
         node_value: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Add every tree's leaf value to ``out[r]`` for rows lo..hi, in tree order.

    Leaves are nodes pointing at themselves. A node's ``dtype`` is LightGBM's decision
    type: bit 0 categorical, bit 1 default left, bits 2-3 the missing type (0 none,
    1 zero, 2 NaN)."""
    n_trees = roots.shape[0]
    width = node_value.shape[1]
    for b0 in range(lo, hi, _BLOCK):
        b1 = min(b0 + _BLOCK, hi)
        for t in range(n_trees):
            root = roots[t]
            col = tree_col[t]
            for r in range(b0, b1):
                node = root
                while left[node] != node:
                    fval = X[r, feature[node]]
                    kind = dtype[node]
                    if kind & 1:  # categorical: the bitset of the categories going left
                        go_left = False
                        # C's int cast truncates (-0.5 is category 0); NaN, negative and
                        # out-of-range values go right, as in LightGBM.
                        if fval == fval and -1.0 < fval < 2147483648.0:
                            iv = int(fval)
                            word = iv >> 5
                            if word < cat_len[node]:
                                go_left = ((cat_bits[cat_start[node] + word]
                                            >> (iv & 31)) & 1) == 1
                    elif kind & 12:  # a missing type: NaN (2) or zero (1) take the default
                        missing = (kind >> 2) & 3
                        nan = fval != fval
                        v = 0.0 if nan else fval
                        is_missing = (missing == 2 and nan) or (
                            missing == 1 and -_ZERO <= v <= _ZERO)
                        go_left = ((kind & 2) != 0) if is_missing else v <= threshold[node]
                    else:  # no missing type: NaN reads as 0
                        go_left = (fval if fval == fval else 0.0) <= threshold[node]
                    node = left[node] if go_left else right[node]
                for j in range(width):
                    out[r, col + j] += node_value[node, j]
