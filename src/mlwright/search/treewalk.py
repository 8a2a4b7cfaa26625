"""Tree ensembles walked by one compiled loop: LightGBM boosters and scikit-learn forests
here, XGBoost and CatBoost in :mod:`mlwright.search.treewalk_boosters`.

``Booster.predict`` spends most of a batch in per-row bookkeeping (a sparse row per
record, a thread team per call): 1,379 trees of 31 leaves score about 26,000 rows/s per
core. Here every tree of a model is flattened once into node arrays (leaves are nodes
pointing at themselves) and one ``numba`` loop walks blocks of rows (up to 16,384) through
every tree, on as many threads as cores (the loop releases the
GIL; the threads are plain Python threads, so nothing of numba's thread layer has to
survive a fork). About 1.5-3x the booster's rows/s on the same cores; the walk is
branchy (a leaf-wise tree's paths differ in length), so it is far from a compiled
forest's limit.

Exactness: the comparisons are LightGBM's (``Tree::NumericalDecision`` and
``CategoricalDecision``: NaN read as 0 unless NaN is the missing type, zero as missing
within 1e-35, the default direction, the category bitsets) on the same float64 inputs
(values within 1e-35 of zero become 0, as LightGBM's dense-row reader drops them), leaf
values parsed from the model string (17 significant digits: the values the booster
predicts with) and summed per row in tree order, as ``Booster.predict`` does, so the raw
scores are the booster's bit for bit; the sigmoid and softmax are LightGBM's formulas.
A forest is walked with scikit-learn's rule (float32 inputs, ``x <= threshold``, NaN by
``missing_go_to_left``) and its leaf fractions are averaged.

``numba`` is imported on first use; where it is missing (or a model has a form not read
here: linear trees, ``rf`` boosting, objectives other than regression, binary and
multiclass) :func:`lightgbm_walker` and :func:`forest_walker` return None and the caller
keeps its own path.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mlwright._logging import get_logger

__all__ = ["TreeWalker", "WholeWalk", "forest_walker", "fuse", "lightgbm_walker"]

log = get_logger(__name__)

_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold, a float literal

# The rows are split over threads (one per core) from this much work (rows x a tree's
# expected path, summed over trees: ~5 ns each) and _THREADED_MIN_ROWS rows on. Sending
# the halves to the pool costs ~50 us: a 64-row batch of mpls_person_search's 150 extra
# trees took 2.4 ms on one core, 1.2 on two; telco's 192 small trees 0.30 and 0.19 ms.
_THREADED_WORK = 1 << 16
_THREADED_MIN_ROWS = 64
_kernel: Any = None
_pool: ThreadPoolExecutor | None = None
_IDENTITY = frozenset({"regression", "regression_l2", "l2", "mean_squared_error", "mse",
                       "regression_l1", "l1", "mean_absolute_error", "mae", "huber", "fair",
                       "quantile", "mape", "mean_absolute_percentage_error"})


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _compiled_kernel() -> Any:
    """The numba loop (:mod:`mlwright.search._treekernel`), imported on first use."""
    global _kernel
    if _kernel is None:
        from mlwright.search._treekernel import walk

        _kernel = walk
    return _kernel


class _Builder:
    """Trees appended one by one into one set of node arrays (leaves as self-loops)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "feature", "threshold", "dtype", "left", "right", "cat_start", "cat_len",
            "value")}
        self.roots: list[int] = []
        self.cols: list[int] = []
        self.f32: list[bool] = []
        self.cat_bits: list[np.ndarray] = []
        self.n_bits = 0
        self.nodes = 0
        self.covers: list[np.ndarray] | None = []

    def add(self, col: int, leaf_values: np.ndarray, feature: np.ndarray,
            threshold: np.ndarray, dtype: np.ndarray, left: np.ndarray, right: np.ndarray,
            cat_start: np.ndarray | None = None, cat_len: np.ndarray | None = None,
            f32: bool = False, cover: np.ndarray | None = None) -> None:
        """One tree: its internal nodes (children < 0 are leaves ``~k``) and the values
        of its leaves, (leaves, width); ``f32``: its leaves are added in float32;
        ``cover``: the training rows (or weight) reaching each node, internal nodes then
        leaves (TreeSHAP's zero fractions, :mod:`mlwright.evaluate.explain.treeshap`)."""
        k, n_leaves = len(feature), len(leaf_values)
        base = self.nodes
        own = base + k + np.arange(n_leaves)

        def child(c: np.ndarray) -> np.ndarray:
            return np.where(c >= 0, base + c, base + k + ~c)

        zeros = np.zeros(n_leaves, np.int64)
        p = self.parts
        p["feature"] += [feature, zeros]
        p["threshold"] += [threshold, zeros.astype(np.float64)]
        p["dtype"] += [dtype, zeros]
        p["left"] += [child(left), own]
        p["right"] += [child(right), own]
        p["cat_start"] += [zeros[:k] if cat_start is None else cat_start, zeros]
        p["cat_len"] += [zeros[:k] if cat_len is None else cat_len, zeros]
        p["value"] += [np.zeros((k, self.width)), leaf_values.reshape(n_leaves, self.width)]
        if cover is None or self.covers is None:
            self.covers = None
        else:
            self.covers.append(np.asarray(cover, dtype=np.float64))
        self.roots.append(base if k else base + k)
        self.cols.append(col)
        self.f32.append(f32)
        self.nodes += k + n_leaves

    def add_bits(self, words: np.ndarray) -> int:
        """Store a tree's category bitsets; returns where they start."""
        start = self.n_bits
        self.cat_bits.append(words)
        self.n_bits += len(words)
        return start

    def build(self, n_out: int, n_features: int, init: np.ndarray | None = None
              ) -> TreeWalker:
        p = {k: np.concatenate(v) for k, v in self.parts.items()}
        bits = np.concatenate(self.cat_bits) if self.cat_bits else np.zeros(1, np.int64)
        walker = TreeWalker((
            np.array(self.roots, np.int32),
            np.array(self.cols, np.int64), np.array(self.f32, np.uint8),
            p["feature"].astype(np.int32),
            p["threshold"].astype(np.float64), p["dtype"].astype(np.uint8),
            p["left"].astype(np.int32), p["right"].astype(np.int32),
            p["cat_start"].astype(np.int64), p["cat_len"].astype(np.int64),
            bits.astype(np.uint32), np.ascontiguousarray(p["value"], dtype=np.float64)),
            n_out, n_features, init)
        if self.covers:
            walker.cover = np.concatenate(self.covers)
        return walker


class TreeWalker:
    """Flat node arrays of a tree ensemble and the raw sum of its leaves per row (from
    ``init``, a start value per output)."""

    def __init__(self, arrays: tuple[np.ndarray, ...], n_out: int, n_features: int,
                 init: np.ndarray | None = None) -> None:
        self.arrays = arrays
        self.n_out = n_out
        self.n_features = n_features
        self.n_trees = len(arrays[0])
        self.init = None if init is None or not np.any(init) else \
            np.asarray(init, dtype=np.float64)
        self.kernel = _compiled_kernel()
        self.cover: np.ndarray | None = None  # per node, where the builder was given them
        # A row's expected steps: a tree of n nodes has (n + 1) / 2 leaves, ~log2(n + 1).
        sizes = np.diff(np.append(arrays[0], len(arrays[6]))).astype(np.float64)
        self.visits = float(np.sum(np.log2(np.maximum(sizes + 1.0, 2.0))))

    def raw(self, X: np.ndarray) -> np.ndarray:
        """(rows, outputs) float64: every tree's leaf value summed in tree order."""
        global _pool
        n = X.shape[0]
        out = np.zeros((n, self.n_out))
        if self.init is not None:
            out[:] = self.init
        if n < _THREADED_MIN_ROWS or n * self.visits < _THREADED_WORK or _cores() == 1:
            self.kernel(X, 0, n, *self.arrays, out)
            return out
        cores = _cores()
        if _pool is None:
            _pool = ThreadPoolExecutor(cores, thread_name_prefix="mlwright-trees")
        step = -(-n // cores)
        kernel, arrays = self.kernel, self.arrays

        def part(lo: int) -> None:
            kernel(X, lo, min(lo + step, n), *arrays, out)

        jobs = [_pool.submit(part, lo) for lo in range(0, n, step)]
        for job in jobs:
            job.result()
        return out


# ---- LightGBM ---------------------------------------------------------------------------------

def _numbers(text: str, dtype: Any) -> np.ndarray:
    return np.array(text.split(), dtype=dtype) if text.strip() else np.empty(0, dtype)


def _parse_lightgbm(model: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    head, _, rest = model.partition("\nTree=")
    # Bare lines (``average_output``) are flags: kept as keys with an empty value.
    header: dict[str, str] = {}
    for line in head.splitlines():
        key, _, value = line.partition("=")
        header[key] = value
    trees = []
    for block in re.split(r"\nTree=\d+\n", "\nTree=" + rest):
        if not block.strip():
            continue
        body = block.split("\nend of trees", 1)[0]
        fields = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
        if "num_leaves" in fields:
            trees.append(fields)
    return header, trees


class LightGBMWalker:
    """``Booster.predict`` (raw score, then LightGBM's sigmoid or softmax) by a TreeWalker."""

    def __init__(self, walker: TreeWalker, link: str, sigmoid: float) -> None:
        self.walker = walker
        self.link = link
        self.sigmoid = sigmoid

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """``Booster.predict(X, raw_score=True)``, (rows, classes) for multiclass."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.walker.n_features:
            raise ValueError(f"expected {self.walker.n_features} features, got {X.shape}")
        # LightGBM's dense-row reader drops values within 1e-35 of zero (read back as 0).
        if not self.walkable(X):
            X = np.where(np.abs(X) <= _ZERO, 0.0, X)
        raw = self.walker.raw(np.ascontiguousarray(X))
        return raw if self.link == "softmax" else raw[:, 0]

    @staticmethod
    def walkable(X: np.ndarray) -> bool:
        """Whether ``X`` walks as it is: no value within 1e-35 of zero but zero."""
        return not ((np.abs(X) <= _ZERO) & (X != 0)).any()

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """``Booster.predict(X)``: the raw score through LightGBM's link (its exp may
        differ from numpy's in the last bit)."""
        return self.from_raw(self.raw_score(X))

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        """The link of raw scores ((rows,) or (rows, classes) for multiclass)."""
        if self.link == "identity":
            return raw
        if self.link == "sigmoid":
            return 1.0 / (1.0 + np.exp(-self.sigmoid * raw))
        top = raw.max(axis=1, keepdims=True)  # Common::Softmax
        e = np.exp(raw - top)
        return e / e.sum(axis=1, keepdims=True)


def lightgbm_walker(booster: Any) -> LightGBMWalker | None:
    """A :class:`LightGBMWalker` equal to ``booster.predict`` (at its best iteration), or
    None where numba is missing or the model has a form not read here."""
    try:
        _compiled_kernel()
    except ImportError:
        return None
    header, trees = _parse_lightgbm(booster.model_to_string())
    objective = header.get("objective", "").split()
    if not objective or "average_output" in header:
        return None
    name = objective[0]
    params = dict(p.split(":", 1) for p in objective[1:] if ":" in p)
    n_class = int(header.get("num_class", "1"))
    per_iteration = int(header.get("num_tree_per_iteration", "1"))
    if name in _IDENTITY and n_class == 1:
        link, sigmoid = "identity", 1.0
    elif name == "binary" and n_class == 1:
        link, sigmoid = "sigmoid", float(params.get("sigmoid", "1"))
    elif name in ("multiclass", "softmax") and n_class == per_iteration > 1:
        link, sigmoid = "softmax", 1.0
    else:
        return None
    if any(t.get("is_linear", "0") != "0" for t in trees):
        return None
    builder = _Builder(width=1)
    for i, t in enumerate(trees):
        leaf_values = _numbers(t["leaf_value"], np.float64)
        if int(t["num_leaves"]) <= 1:
            none = np.empty(0, np.int64)
            builder.add(i % per_iteration, leaf_values[:1], none, none.astype(float), none,
                        none, none)
            continue
        f = _numbers(t["split_feature"], np.int64)
        th = _numbers(t["threshold"], np.float64)
        dt = _numbers(t["decision_type"], np.int64)
        starts = np.zeros(len(f), np.int64)
        lengths = np.zeros(len(f), np.int64)
        if int(t.get("num_cat", "0")) > 0:
            bounds = _numbers(t["cat_boundaries"], np.int64)
            first = builder.add_bits(_numbers(t["cat_threshold"], np.int64))
            cat = (dt & 1) == 1
            idx = th[cat].astype(np.int64)  # a categorical split's threshold: its bitset
            starts[cat] = bounds[idx] + first
            lengths[cat] = bounds[idx + 1] - bounds[idx]
        builder.add(i % per_iteration, leaf_values, f, th, dt,
                    _numbers(t["left_child"], np.int64), _numbers(t["right_child"], np.int64),
                    starts, lengths)
    walker = builder.build(per_iteration, int(header["max_feature_idx"]) + 1)
    return LightGBMWalker(walker, link, sigmoid)


# ---- scikit-learn forests ---------------------------------------------------------------------

class WholeWalk:
    """The fused walk's view of a model whose every row walks as it is (several members'
    trees in one call, see predictor.py): its ``walker``; ``from_raw`` is the model's."""

    walker: TreeWalker

    @property
    def tree_walker(self) -> TreeWalker:
        return self.walker

    def walkable(self, X: np.ndarray) -> bool:
        return True


class ForestWalker(WholeWalk):
    """A forest's ``predict_proba`` / ``predict``: the mean of its trees' leaf values (its
    float32 comparisons made on float64 rows, see :func:`f32_at_most`)."""

    def __init__(self, walker: TreeWalker, n_trees: int) -> None:
        self.walker = walker
        self.n_trees = n_trees

    def __call__(self, X: Any) -> np.ndarray:
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
        return self.walker.raw(np.ascontiguousarray(X)) / self.n_trees

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        return raw / self.n_trees


def forest_walker(est: Any) -> ForestWalker | None:
    """A :class:`ForestWalker` of a fitted single-output scikit-learn forest, or None."""
    try:
        _compiled_kernel()
    except ImportError:
        return None
    trees = [t.tree_ for t in est.estimators_]
    width = trees[0].value.reshape(trees[0].node_count, -1).shape[1]
    builder = _Builder(width)
    for t in trees:
        internal = t.children_left != -1
        # Renumbered as LightGBM numbers them: internal nodes 0.., leaves ~0, ~1, ...
        ids = np.where(internal, np.cumsum(internal) - 1, ~(np.cumsum(~internal) - 1))
        kids = internal.nonzero()[0]
        # NaN is the missing type (2, bits 2-3), with its default direction (bit 1).
        go_left = np.asarray(t.missing_go_to_left, dtype=bool)[kids]
        # scikit-learn sends float32(x) <= threshold left: float32(x) <= the largest float32
        # at or below the threshold, read on float64 rows.
        th = t.threshold[kids]
        below = th.astype(np.float32)
        below = np.where(below.astype(np.float64) > th,
                         np.nextafter(below, np.float32(-np.inf)), below)
        builder.add(0, t.value.reshape(t.node_count, -1)[~internal], t.feature[kids],
                    f32_at_most(below), (2 << 2) | np.where(go_left, 2, 0),
                    ids[t.children_left[kids]], ids[t.children_right[kids]],
                    cover=np.concatenate([t.weighted_n_node_samples[kids],
                                          t.weighted_n_node_samples[~internal]]))
    return ForestWalker(builder.build(width, int(est.n_features_in_)), len(trees))


def node_thresholds(walker: TreeWalker, n_features: int) -> list[np.ndarray]:
    """The distinct split thresholds of each feature (categorical splits: the category
    numbers their bitsets name); for probe rows that test a walk against its model."""
    _, _, _, feature, threshold, dtype, left, _, cat_start, cat_len, bits, _ = walker.arrays
    internal = left != np.arange(len(left))
    out = []
    for f in range(n_features):
        mine = internal & (feature == f)
        numeric = np.unique(threshold[mine & ((dtype & 1) == 0)])
        cats: list[int] = []
        for node in np.flatnonzero(mine & ((dtype & 1) == 1))[:50]:
            words = bits[cat_start[node]:cat_start[node] + cat_len[node]]
            cats += [w * 32 + b for w, word in enumerate(words.tolist()) for b in range(32)
                     if word >> b & 1]
        out.append(np.concatenate([numeric, np.unique(np.array(cats, dtype=float)),
                                   np.unique(np.array(cats, dtype=float)) + 0.5]))
    return out


# ---- float32 rules --------------------------------------------------------------------------

_F32_MAX = float(np.finfo(np.float32).max)
# float64 values from this one on round to float32 infinity (the tie goes to the even inf).
_F32_OVERFLOW = _F32_MAX + 2.0 ** 103


def f32_at_most(bound: np.ndarray) -> np.ndarray:
    """float64 thresholds ``t`` with ``x <= t`` exactly when ``float32(x) <= bound``, for
    float32 ``bound`` values: trees that compare float32 features (XGBoost, CatBoost)
    walk the float64 rows LightGBM reads, with no float32 copy. ``t`` is the largest
    double rounding to ``bound`` or below: the midpoint to the next float32, itself
    included when the tie rounds to ``bound`` (an even significand)."""
    b = np.asarray(bound, dtype=np.float32)
    if np.isnan(b).any():
        raise ValueError("NaN split threshold")
    with np.errstate(over="ignore", invalid="ignore"):  # the largest float32's next: inf
        up = np.nextafter(b, np.float32(np.inf)).astype(np.float64)
        mid = (b.astype(np.float64) + np.where(np.isinf(up), _F32_OVERFLOW, up)) / 2
    mid = np.where(np.isinf(up), _F32_OVERFLOW, mid)
    even = (b.view(np.uint32) & 1) == 0
    t = np.where(even, mid, np.nextafter(mid, -np.inf))
    # inf (scikit-learn's split of missing values from the rest): every number; -inf:
    # what rounds to -inf.
    return np.where(b == np.inf, np.inf, np.where(b == -np.inf, -_F32_OVERFLOW, t))


def f32_below(bound: np.ndarray) -> np.ndarray:
    """float64 thresholds ``t`` with ``x <= t`` exactly when ``float32(x) < bound``."""
    b = np.asarray(bound, dtype=np.float32)
    if not np.isfinite(b).all():
        raise ValueError("infinite split threshold")
    return f32_at_most(np.nextafter(b, np.float32(-np.inf)))


# ---- several walks in one call ------------------------------------------------------------------

def fuse(walkers: list[TreeWalker]) -> tuple[TreeWalker, list[int]]:
    """One TreeWalker walking every tree of ``walkers`` over the same rows, and the first
    output column of each: one compiled call instead of one per model (the server's single
    rows spend more in each call's setup than in the walk). Each walker's columns sum
    exactly as its own would: its trees in order from its start values; a narrower
    walker's block is padded so the widest leaves' extra (zero) values land in it."""
    width = max(w.arrays[-1].shape[1] for w in walkers)
    parts: list[list[np.ndarray]] = [[] for _ in range(12)]
    starts, init = [], []
    node = bits = col = 0
    for w in walkers:
        roots, cols, f32, feature, threshold, dtype, left, right, cat_start, cat_len, \
            cat_bits, value = w.arrays
        own = value.shape[1]
        starts.append(col)
        pieces = (roots + node, cols + col, f32, feature, threshold, dtype, left + node,
                  right + node, cat_start + bits, cat_len, cat_bits,
                  np.pad(value, ((0, 0), (0, width - own))))
        for acc, piece in zip(parts, pieces, strict=True):
            acc.append(piece)
        block = w.n_out + width - own
        init.append(np.pad(w.init if w.init is not None else np.zeros(w.n_out),
                           (0, block - w.n_out)))
        node += len(left)
        bits += len(cat_bits)
        col += block
    arrays = tuple(np.ascontiguousarray(np.concatenate(p)) for p in parts)
    n_features = max(w.n_features for w in walkers)
    return TreeWalker(arrays, col, n_features, np.concatenate(init)), starts
