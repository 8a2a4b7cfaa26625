"""XGBoost boosters and CatBoost oblivious trees walked by :mod:`mlwright.search.treewalk`'s
compiled loop, each read from the library's own JSON model and checked against its own
predictions by the caller (``mlwright.search.members``).

XGBoost: float32 features, ``x < split_condition`` goes left, missing by ``default_left``;
margins summed in float32 from the base margin, then XGBoost's float32 sigmoid or softmax.
CatBoost: float32 borders (``x > border`` sets the bit), NaN by each feature's treatment,
one-hot and single-feature CTR splits as category bitsets read from the model's own leaf
indexes; CTRs over feature combinations are not read (the caller keeps CatBoost). Where a
model has a form not read here, the readers return None.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mlwright._logging import get_logger
from mlwright.search.treewalk import TreeWalker, _Builder, _compiled_kernel, f32_at_most, f32_below

__all__ = ["CatBoostWalker", "XGBoostWalker", "catboost_walker", "xgboost_walker"]

log = get_logger(__name__)


# ---- XGBoost ----------------------------------------------------------------------------------

class XGBoostWalker:
    """``Booster.inplace_predict`` (value) by a TreeWalker: margins summed in float32 from
    the base margin, then XGBoost's float32 sigmoid or softmax."""

    def __init__(self, walker: TreeWalker, link: str) -> None:
        self.walker = walker
        self.link = link

    def margin(self, X: np.ndarray) -> np.ndarray:
        """``inplace_predict(X, predict_type="margin")`` as float64 holding float32
        values, (rows, classes) for multiclass."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.walker.n_features:
            raise ValueError(f"expected {self.walker.n_features} features, got {X.shape}")
        raw = self.walker.raw(np.ascontiguousarray(X))
        return raw if self.link == "softmax" else raw[:, 0]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """``inplace_predict(X)``: float32, as XGBoost returns it."""
        return self.finish(self.margin(X))

    def finish(self, margin: np.ndarray) -> np.ndarray:
        """The objective's transform of float32 margins (float64 holding them)."""
        from mlwright.search._treekernel import xgb_sigmoid, xgb_softmax

        out = np.empty(margin.shape, dtype=np.float32)
        if self.link == "identity":
            out[...] = margin
        elif self.link == "sigmoid":
            xgb_sigmoid(np.ascontiguousarray(margin), out)
        else:
            xgb_softmax(np.ascontiguousarray(margin), out)
        return out


def _base_margin(learner: dict[str, Any], link: str) -> np.ndarray:
    """The base score in margin space, float32 as XGBoost computes it."""
    text = learner["learner_model_param"]["base_score"].strip("[]")
    base = np.array([float(v) for v in text.split(",")], dtype=np.float32)
    if link == "sigmoid":  # ProbToMargin: -log(1/p - 1) in float32
        one = np.float32(1.0)
        inner = (one / base - one).astype(np.float32)
        return np.array([-np.float32(np.log(np.float64(v))) for v in inner], np.float32)
    return base


def xgboost_walker(booster: Any, iteration_range: tuple[int, int]) -> XGBoostWalker | None:
    """An :class:`XGBoostWalker` of a gbtree booster over ``iteration_range`` ((0, 0): all),
    or None where numba is missing or the model has a form not read here (dart, linear,
    categorical splits, vector leaves, a ``missing`` other than NaN, objectives other than
    squared error, binary logistic and multiclass softprob)."""
    import json

    try:
        _compiled_kernel()
    except ImportError:
        return None
    model = json.loads(booster.save_raw("json"))["learner"]
    booster_json = model["gradient_booster"]
    if booster_json.get("name") != "gbtree":
        return None
    objective = model["objective"]["name"]
    link = {"reg:squarederror": "identity", "binary:logistic": "sigmoid",
            "multi:softprob": "softmax"}.get(objective)
    if link is None:
        return None
    param = model["learner_model_param"]
    n_groups = max(1, int(param.get("num_class", "0")))
    if int(param.get("num_target", "1")) != 1 or (link == "softmax") != (n_groups > 1):
        return None
    trees_json = booster_json["model"]["trees"]
    info = booster_json["model"]["tree_info"]
    per_round = n_groups * int(booster_json["model"]["gbtree_model_param"]
                               .get("num_parallel_tree", "1"))
    begin, end = iteration_range
    end = len(trees_json) // per_round if end == 0 else end
    builder = _Builder(width=1)
    for i in range(begin * per_round, min(end * per_round, len(trees_json))):
        t = trees_json[i]
        if any(t["split_type"]) or int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
            return None
        left = np.asarray(t["left_children"], np.int64)
        right = np.asarray(t["right_children"], np.int64)
        cond = np.asarray(t["split_conditions"], np.float64)
        leaf = left == -1
        # XGBoost numbers nodes freely: internal nodes 0.., leaves ~0, ~1, ... here.
        ids = np.where(~leaf, np.cumsum(~leaf) - 1, ~(np.cumsum(leaf) - 1))
        kids = np.flatnonzero(~leaf)
        default_left = np.asarray(t["default_left"], bool)[kids]
        # Leaves hold their value in split_conditions; a split sends float32(x) < cond left.
        builder.add(int(info[i]), cond[leaf].astype(np.float32).astype(np.float64),
                    np.asarray(t["split_indices"], np.int64)[kids], f32_below(cond[kids]),
                    (2 << 2) | np.where(default_left, 2, 0), ids[left[kids]],
                    ids[right[kids]], f32=True)
    if not builder.roots:
        return None
    n_features = int(param["num_feature"])
    walker = builder.build(n_groups, n_features, init=_base_margin(model, link)
                           .astype(np.float64) * np.ones(n_groups))
    return XGBoostWalker(walker, link)


# ---- CatBoost ---------------------------------------------------------------------------------

# Category codes (the tree style's ordinal block) whose splits are read from CatBoost
# itself: -1 (missing, unseen) and 0 .. _CAT_CODES - 1.
_CAT_CODES = 1024
# Cells of the code rows sent to CatBoost in one call (about 32 MB as float64).
_CODE_CELLS = 4_000_000
_CATBOOST_LINKS = {"RMSE": "identity", "Logloss": "sigmoid", "MultiClass": "softmax"}


class CatBoostWalker:
    """``CatBoost.predict_proba`` / ``predict`` of a model whose categorical features are
    integer codes, by a TreeWalker of its oblivious trees: float splits compare float32
    values (``x > border``, NaN by the feature's treatment), and one-hot and single-feature
    CTR splits become category bitsets read from the model's own leaf indexes of every
    code in ``-1 .. codes - 1``. :meth:`covers` says whether a matrix stays in that range."""

    def __init__(self, walker: TreeWalker, link: str, scale: float, bias: np.ndarray,
                 n_cat: int) -> None:
        self.walker = walker
        self.link = link
        self.scale = scale
        self.bias = bias
        self.n_cat = n_cat

    def covers(self, X: np.ndarray) -> bool:
        """True when every category code of ``X`` is one the walk has read."""
        if not self.n_cat:
            return True
        block = X[:, :self.n_cat]
        return not ((block >= _CAT_CODES) | (block <= -2)).any()

    def raw(self, X: np.ndarray) -> np.ndarray:
        """``predict(X, prediction_type="RawFormulaVal")``: (rows,) or (rows, classes)."""
        raw = self.walker.raw(np.ascontiguousarray(X, dtype=np.float64))
        raw = raw * self.scale + self.bias if self.scale != 1 else raw + self.bias
        return raw if self.link == "softmax" else raw[:, 0]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (rows, classes) for a classifier, values (rows,) for RMSE."""
        return self.from_raw(self.walker.raw(np.ascontiguousarray(X, dtype=np.float64)))

    def from_raw(self, sums: np.ndarray) -> np.ndarray:
        """:meth:`__call__` from the walker's leaf sums."""
        raw = sums * self.scale + self.bias if self.scale != 1 else sums + self.bias
        raw = raw if self.link == "softmax" else raw[:, 0]
        if self.link == "identity":
            return raw
        if self.link == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-raw))
            return np.column_stack([1.0 - p, p])
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def catboost_walker(model: Any, to_input: Any) -> CatBoostWalker | None:
    """A :class:`CatBoostWalker` of a fitted CatBoost model whose categorical features are
    the first columns, or None where numba is missing; ``NotImplementedError`` (naming it)
    for a form not read here (CTRs over feature combinations, text or embedding features,
    losses other than RMSE, Logloss and MultiClass).
    ``to_input(X)`` turns a float matrix into what the model's predict takes."""
    import json
    import tempfile

    try:
        _compiled_kernel()
    except ImportError:
        return None
    loss = str(model.get_all_params().get("loss_function"))
    link = _CATBOOST_LINKS.get(loss)
    if link is None:
        raise NotImplementedError(f"loss {loss}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as fh:
            spec = json.load(fh)
    info = spec["features_info"]
    if set(info) - {"float_features", "categorical_features", "ctrs"}:
        raise NotImplementedError("text or embedding features")
    floats = info.get("float_features", [])
    cats = info.get("categorical_features", [])
    cat_cols = [c["flat_feature_index"] for c in cats]
    if cat_cols != list(range(len(cat_cols))):
        raise NotImplementedError("categorical features after float ones")
    # Binary features are numbered float borders first, then one-hot values, then CTR
    # borders: the split indices of float splits must agree, or the model is not read.
    owner: dict[int, int] = {}  # split index -> categorical column of one-hot/CTR splits
    index = sum(len(f["borders"]) for f in floats)
    for c in cats:
        for _ in c.get("values", []):
            owner[index] = c["flat_feature_index"]
            index += 1
    for ctr in info.get("ctrs", []):
        elements = ctr["elements"]
        single = len(elements) == 1 and elements[0]["combination_element"] == \
            "cat_feature_value"
        for _ in ctr["borders"]:
            owner[index] = cats[elements[0]["cat_feature_index"]]["flat_feature_index"] \
                if single else -1
            index += 1
    float_split = {}
    index = 0
    for f in floats:
        for border in f["borders"]:
            float_split[index] = (f["flat_feature_index"], border,
                                  f.get("nan_value_treatment", "AsIs") == "AsTrue")
            index += 1
    trees = spec["oblivious_trees"]
    if any(split["split_type"] != "FloatFeature"
           and owner.get(split["split_index"], -1) == -1
           for tree in trees for split in tree["splits"] or []):
        # Known before CatBoost is asked for a single leaf index (ames' five CatBoost
        # members: 2.5 s of a 3.6 s first prediction spent learning it).
        raise NotImplementedError("CTRs over feature combinations")
    # Every categorical split's value for every code, from the model's own leaf indexes.
    bits_of: dict[tuple[int, int], np.ndarray] = {}  # (tree, level) -> bit per code + 1
    codes = np.arange(-1, _CAT_CODES, dtype=np.float64)
    n_features = len(floats) + len(cats)
    columns = sorted(set(owner.values()) - {-1})
    # Several columns' codes in one call (each column's block of rows varies it alone):
    # CatBoost's per-call setup was half of building a walk (ames: 39 columns, 0.69 s
    # one by one, 0.37 s at once), within _CODE_CELLS cells a call.
    per_call = max(1, _CODE_CELLS // (len(codes) * max(n_features, 1)))
    leaves_of: dict[int, np.ndarray] = {}
    for first in range(0, len(columns), per_call):
        group = columns[first:first + per_call]
        rows = np.zeros((len(codes) * len(group), n_features))
        for i, col in enumerate(group):
            rows[i * len(codes):(i + 1) * len(codes), col] = codes
        leaves = np.asarray(model.calc_leaf_indexes(to_input(rows)), dtype=np.int64)
        for i, col in enumerate(group):
            leaves_of[col] = leaves[i * len(codes):(i + 1) * len(codes)]
    for t, tree in enumerate(trees):
        for level, split in enumerate(tree["splits"] or []):
            col = owner.get(split["split_index"], -1)
            if split["split_type"] != "FloatFeature" and col != -1:
                bits_of[(t, level)] = (leaves_of[col][:, t] >> level) & 1
    dim = len(spec["scale_and_bias"][1]) if link == "softmax" else 1
    builder = _Builder(width=dim)
    for t, tree in enumerate(trees):
        splits = tree["splits"] or []
        depth = len(splits)
        n_inner = 2 ** depth - 1
        feature = np.zeros(n_inner, np.int64)
        threshold = np.zeros(n_inner)
        dtype = np.zeros(n_inner, np.int64)
        left = np.zeros(n_inner, np.int64)
        right = np.zeros(n_inner, np.int64)
        starts = np.zeros(n_inner, np.int64)
        lengths = np.zeros(n_inner, np.int64)
        for level, split in enumerate(splits):
            first = 2 ** level - 1
            kind = split["split_type"]
            if kind == "FloatFeature":
                if split["split_index"] not in float_split or \
                        float_split[split["split_index"]][0] != \
                        floats[split["float_feature_index"]]["flat_feature_index"]:
                    raise NotImplementedError("unexpected binary feature numbering")
                col, border, nan_right = float_split[split["split_index"]]
                # float32(x) > border sets the bit (right); NaN by its treatment.
                cut, node_kind, flip = f32_at_most(np.array([border]))[0], \
                    (2 << 2) | (0 if nan_right else 2), False
                words = None
            elif (t, level) in bits_of:
                bit = bits_of[(t, level)]
                col = owner[split["split_index"]]
                # Code -1 (and NaN) leave a bitset split to the right: the side holding
                # the code set that -1 belongs to.
                flip = bit[0] == 0
                inside = (bit[1:] == (1 if flip else 0)).nonzero()[0]
                packed = np.zeros(_CAT_CODES // 32, np.int64)
                np.bitwise_or.at(packed, inside // 32, 1 << (inside % 32))
                words = packed
                cut, node_kind = 0.0, 1
            else:
                raise NotImplementedError("CTRs over feature combinations")
            start = builder.add_bits(words) if words is not None else 0
            for p in range(2 ** level):
                node = first + p
                zero = p  # the leaf index so far, bit ``level`` clear
                one = p | (1 << level)
                if level + 1 < depth:
                    kid0, kid1 = 2 ** (level + 1) - 1 + zero, 2 ** (level + 1) - 1 + one
                else:
                    kid0, kid1 = ~zero, ~one
                feature[node], threshold[node], dtype[node] = col, cut, node_kind
                left[node], right[node] = (kid1, kid0) if flip else (kid0, kid1)
                if words is not None:
                    starts[node], lengths[node] = start, len(words)
        values = np.asarray(tree["leaf_values"], np.float64).reshape(2 ** depth, dim)
        builder.add(0, values, feature, threshold, dtype, left, right, starts, lengths)
    if not trees:
        raise NotImplementedError("no trees")
    scale, bias = spec["scale_and_bias"]
    walker = builder.build(dim, n_features)
    return CatBoostWalker(walker, link, float(scale), np.asarray(bias, np.float64),
                          len(cats))
