"""The compiled loops of :mod:`mlwright.evaluate.explain.treeshap` (imports numba: load it
lazily).

Path-dependent TreeSHAP (Lundberg, Erion and Lee, "Consistent individualized feature
attribution for tree ensembles", 2018, Algorithm 2) over the flat node arrays of
:mod:`mlwright.search.treewalk`: a row follows every path of a tree at once; the path's
unique features carry the share of training rows that reach the node when the feature is
unknown (the *zero fraction*, from the node covers) and whether the row itself goes that
way (the *one fraction*); each leaf adds its value, weighted by the permutation weights of
that path, to every feature on it. The path of each recursion level lives in one slice of
a buffer sized from the tree's depth, as in the reference implementation.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from mlwright.search._treekernel import goes_left


@numba.njit(nogil=True, cache=True)
def _extend(fi: Any, zf: Any, of: Any, pw: Any, s: int, depth: int, zero: float, one: float,
            feature: int) -> None:  # pragma: no cover - compiled
    fi[s + depth] = feature
    zf[s + depth] = zero
    of[s + depth] = one
    pw[s + depth] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        pw[s + i + 1] += one * pw[s + i] * (i + 1) / (depth + 1)
        pw[s + i] = zero * pw[s + i] * (depth - i) / (depth + 1)


@numba.njit(nogil=True, cache=True)
def _unwind(fi: Any, zf: Any, of: Any, pw: Any, s: int, depth: int,
            k: int) -> None:  # pragma: no cover - compiled
    """Take the path element ``k`` out of the path of ``depth + 1`` elements at ``s``."""
    one, zero = of[s + k], zf[s + k]
    nxt = pw[s + depth]
    for i in range(depth - 1, -1, -1):
        if one != 0.0:
            tmp = pw[s + i]
            pw[s + i] = nxt * (depth + 1) / ((i + 1) * one)
            nxt = tmp - pw[s + i] * zero * (depth - i) / (depth + 1)
        else:
            pw[s + i] = pw[s + i] * (depth + 1) / (zero * (depth - i))
    for i in range(k, depth):
        fi[s + i] = fi[s + i + 1]
        zf[s + i] = zf[s + i + 1]
        of[s + i] = of[s + i + 1]


@numba.njit(nogil=True, cache=True)
def _unwound_sum(zf: Any, of: Any, pw: Any, s: int, depth: int,
                 k: int) -> float:  # pragma: no cover - compiled
    """The sum of the path's weights with element ``k`` taken out (the path unchanged)."""
    one, zero = of[s + k], zf[s + k]
    nxt = pw[s + depth]
    total = 0.0
    for i in range(depth - 1, -1, -1):
        if one != 0.0:
            tmp = nxt * (depth + 1) / ((i + 1) * one)
            total += tmp
            nxt = pw[s + i] - tmp * zero * (depth - i) / (depth + 1)
        elif zero != 0.0:
            total += pw[s + i] / zero / ((depth - i) / (depth + 1))
    return total


@numba.njit(nogil=True, cache=True)
def _tree(x: Any, root: int, feature: Any, threshold: Any, dtype: Any, left: Any,
          right: Any, cat_start: Any, cat_len: Any, cat_bits: Any, value: Any, cover: Any,
          col: int, fi: Any, zf: Any, of: Any, pw: Any, stack: Any, fracs: Any,
          phi: Any) -> None:  # pragma: no cover - compiled
    """One tree's SHAP values of row ``x`` added to ``phi`` (outputs, features).

    The reference recursion with an explicit stack (numba cannot cache a recursive
    function): a frame is (node, unique depth, the parent level's path start, the incoming
    feature) and its (zero, one) fractions; the hot child is pushed last, so its whole
    subtree is done before the cold child copies the same parent path."""
    top = 1
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = root, 0, 0, -1
    fracs[0, 0], fracs[0, 1] = 1.0, 1.0
    while top:
        top -= 1
        node, depth, parent, feature_in = stack[top, 0], stack[top, 1], stack[top, 2], \
            stack[top, 3]
        s = parent + depth + 1  # this level's copy of the path, after its parent's
        for i in range(depth + 1):
            fi[s + i] = fi[parent + i]
            zf[s + i] = zf[parent + i]
            of[s + i] = of[parent + i]
            pw[s + i] = pw[parent + i]
        _extend(fi, zf, of, pw, s, depth, fracs[top, 0], fracs[top, 1], feature_in)
        if left[node] == node:  # a leaf: its value to every feature on the path
            for i in range(1, depth + 1):
                w = _unwound_sum(zf, of, pw, s, depth, i) * (of[s + i] - zf[s + i])
                f = fi[s + i]
                for j in range(value.shape[1]):
                    phi[col + j, f] += w * value[node, j]
            continue
        split = feature[node]
        if goes_left(x[split], dtype[node], threshold[node], cat_start[node], cat_len[node],
                     cat_bits):
            hot, cold = left[node], right[node]
        else:
            hot, cold = right[node], left[node]
        in_zero, in_one = 1.0, 1.0
        for k in range(1, depth + 1):  # a feature met before on this path: undo that split
            if fi[s + k] == split:
                in_zero, in_one = zf[s + k], of[s + k]
                _unwind(fi, zf, of, pw, s, depth, k)
                depth -= 1
                break
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = cold, depth + 1, s, split
        fracs[top, 0], fracs[top, 1] = cover[cold] / cover[node] * in_zero, 0.0
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = hot, depth + 1, s, split
        fracs[top, 0], fracs[top, 1] = cover[hot] / cover[node] * in_zero, in_one
        top += 1


@numba.njit(nogil=True, cache=True)
def shap_rows(X: Any, lo: int, hi: int, roots: Any, tree_col: Any, feature: Any,
              threshold: Any, dtype: Any, left: Any, right: Any, cat_start: Any, cat_len: Any,
              cat_bits: Any, value: Any, cover: Any, max_depth: int,
              phi: Any) -> None:  # pragma: no cover - compiled
    """Add every tree's SHAP values of rows lo..hi to ``phi`` (rows, outputs, features)."""
    size = (max_depth + 3) * (max_depth + 4) // 2 + 2
    fi = np.empty(size, np.int64)
    zf = np.empty(size)
    of = np.empty(size)
    pw = np.empty(size)
    fi[0] = -1  # the root's parent path, copied and then overwritten
    zf[0] = of[0] = pw[0] = 1.0
    stack = np.empty((2 * max_depth + 4, 4), np.int64)
    fracs = np.empty((2 * max_depth + 4, 2))
    for r in range(lo, hi):
        for t in range(roots.shape[0]):
            _tree(X[r], roots[t], feature, threshold, dtype, left, right, cat_start, cat_len,
                  cat_bits, value, cover, tree_col[t], fi, zf, of, pw, stack, fracs, phi[r])


@numba.njit(nogil=True, cache=True)
def depths(roots: Any, left: Any, right: Any) -> int:  # pragma: no cover - compiled
    """The deepest leaf's depth over all trees."""
    deepest = 0
    stack = np.empty((len(left) + 1, 2), np.int64)
    for t in range(roots.shape[0]):
        stack[0, 0], stack[0, 1] = roots[t], 0
        top = 1
        while top:
            top -= 1
            node, d = stack[top, 0], stack[top, 1]
            if left[node] == node:
                deepest = max(deepest, d)
                continue
            stack[top, 0], stack[top, 1] = left[node], d + 1
            stack[top + 1, 0], stack[top + 1, 1] = right[node], d + 1
            top += 2
    return deepest


@numba.njit(nogil=True, cache=True)
def expected(roots: Any, tree_col: Any, left: Any, right: Any, value: Any, cover: Any,
             out: Any) -> None:  # pragma: no cover - compiled
    """Add each tree's cover-weighted mean leaf value (its output when nothing is known)
    to ``out`` (outputs,)."""
    stack = np.empty(len(left) + 1, np.int64)
    for t in range(roots.shape[0]):
        total = cover[roots[t]]
        stack[0] = roots[t]
        top = 1
        while top:
            top -= 1
            node = stack[top]
            if left[node] == node:
                for j in range(value.shape[1]):
                    out[tree_col[t] + j] += cover[node] / total * value[node, j]
                continue
            stack[top] = left[node]
            stack[top + 1] = right[node]
            top += 2
