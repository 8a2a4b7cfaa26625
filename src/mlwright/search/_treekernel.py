"""The compiled loop of :mod:`mlwright.search.treewalk` (imports numba: load it lazily)."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

# LightGBM's kZeroThreshold: a float literal (1e-35f) read as a double.
_ZERO = float(np.float32(1e-35))
# Rows per block: every tree walks a block's rows before the next tree. The bytes of a
# block's rows, up to _MAX_BLOCK rows: a tree's nodes are loaded once per block, so long
# blocks pay for large trees (150 extra trees of 3.6 M nodes on diamonds, 16,384 rows:
# 64-row blocks 1.64 s, 8,192-row 0.55 s; LightGBM 1.2-1.4x), while the rows stay in cache.
_BLOCK_BYTES = 2 << 20
_MIN_BLOCK = 64
_MAX_BLOCK = 16_384


@numba.njit(nogil=True, cache=True, inline="always")
def goes_left(fval: float, kind: int, threshold: float, cat_start: int, cat_len: int,
              cat_bits: Any) -> bool:  # pragma: no cover - compiled
    """Whether a row with ``fval`` at a node goes left, by :func:`walk`'s rule (TreeSHAP's
    walk, :mod:`mlwright.evaluate.explain._treeshap_kernel`). ``kind`` is the node's
    decision type (see :func:`walk`)."""
    if kind & 1:  # categorical
        go_left = False
        if fval == fval and -1.0 < fval < 2147483648.0:
            iv = int(fval)
            word = iv >> 5
            if word < cat_len:
                go_left = ((cat_bits[cat_start + word] >> (iv & 31)) & 1) == 1
    elif kind & 12:
        missing = (kind >> 2) & 3
        nan = fval != fval
        v = 0.0 if nan else fval
        is_missing = (missing == 2 and nan) or (missing == 1 and -_ZERO <= v <= _ZERO)
        go_left = ((kind & 2) != 0) if is_missing else v <= threshold
    else:
        go_left = (fval if fval == fval else 0.0) <= threshold
    return go_left


@numba.njit(nogil=True, cache=True)
def walk(X: Any, lo: int, hi: int, roots: Any, tree_col: Any, tree_f32: Any, feature: Any,
         threshold: Any, dtype: Any, left: Any, right: Any, cat_start: Any, cat_len: Any,
         cat_bits: Any, node_value: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Add every tree's leaf value to ``out[r]`` for rows lo..hi, in tree order.

    Leaves are nodes pointing at themselves. A node's ``dtype`` is LightGBM's decision
    type: bit 0 categorical, bit 1 default left, bits 2-3 the missing type (0 none,
    1 zero, 2 NaN); the rule is :func:`goes_left`'s, written out here because a call that
    loads a node's bitset fields up front costs 6% of the walk (LightGBM, 300 trees). A
    tree with ``tree_f32`` set adds in float32 (XGBoost's sums: a
    float64 sum of two float32 values rounded to float32 is their float32 sum)."""
    n_trees = roots.shape[0]
    width = node_value.shape[1]
    block = min(max(_BLOCK_BYTES // (8 * max(X.shape[1], 1)), _MIN_BLOCK), _MAX_BLOCK)
    for b0 in range(lo, hi, block):
        b1 = min(b0 + block, hi)
        for t in range(n_trees):
            root = roots[t]
            col = tree_col[t]
            f32 = tree_f32[t] != 0
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
                    # Arithmetic, not a branch on go_left (which the data decides):
                    # 5-12% faster batches.
                    lft = left[node]
                    rgt = right[node]
                    node = rgt + (lft - rgt) * np.int32(go_left)
                if f32:
                    for j in range(width):
                        out[r, col + j] = np.float32(out[r, col + j] + node_value[node, j])
                else:
                    for j in range(width):
                        out[r, col + j] += node_value[node, j]


@numba.njit(nogil=True, cache=True)
def xgb_sigmoid(margin: Any, out: Any) -> None:  # pragma: no cover - compiled
    """XGBoost's ``common::Sigmoid`` in float32 (libm's expf, as XGBoost calls it)."""
    one = np.float32(1.0)
    eps = np.float32(1e-16)
    cap = np.float32(88.7)
    for i in range(margin.shape[0]):
        x = min(-np.float32(margin[i]), cap)
        out[i] = one / ((np.float32(math.exp(x)) + one) + eps)


@numba.njit(nogil=True, cache=True)
def xgb_softmax(margin: Any, out: Any) -> None:  # pragma: no cover - compiled
    """XGBoost's ``common::Softmax`` per row: float32 exps, a float64 sum."""
    k = margin.shape[1]
    for i in range(margin.shape[0]):
        wmax = np.float32(margin[i, 0])
        for j in range(1, k):
            wmax = max(np.float32(margin[i, j]), wmax)
        wsum = 0.0
        for j in range(k):
            e = np.float32(math.exp(np.float32(np.float32(margin[i, j]) - wmax)))
            out[i, j] = e
            wsum += float(e)  # a double sum of float32 terms, as XGBoost adds them
        total = np.float32(wsum)
        for j in range(k):
            out[i, j] = np.float32(out[i, j]) / total
