"""Tree ensembles as ONNX ``TreeEnsembleRegressor`` nodes, written here.

skl2onnx's converters drop ``missing_go_to_left`` (every NaN takes one side) and round
thresholds to the nearest float32, which moves a training value that lies just above a
threshold to the wrong side. These converters keep both exact:

* random forests and extra trees compare ``float32(x) <= threshold`` (scikit-learn casts
  its input to float32): the threshold is rounded *down* to a float32, which gives the
  same answer for every float32 ``x``; the trees' leaf values (class fractions or values)
  are averaged;
* HistGradientBoosting compares ``x <= threshold`` in double: the graph takes doubles and
  keeps the thresholds in double (``nodes_values_as_tensor``); the raw scores are summed
  over the iterations from the baseline, then the link (sigmoid or softmax) in double.
* LightGBM compares ``x <= threshold`` in double too (onnxmltools writes float32, which
  sends a value just above a threshold but equal to it in float32 the other way): the
  same double graph from ``dump_model()``, NaN by each split's missing type, a category set
  as a chain of equality tests (NaN and unseen codes equal none: the right child); an
  option not written here (zero as missing, other objectives) returns None.

Each returns a ``ModelProto`` with input ``X`` and output ``probabilities`` (classes) or
``variable`` (values), as the other converters' members.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["forest_model", "hist_gb_model", "lightgbm_model"]

_LEAF = -1


def _floor32(values: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each value (inf stays inf)."""
    near = values.astype(np.float32)
    above = near.astype(np.float64) > values
    near[above] = np.nextafter(near[above], np.float32(-np.inf))
    return near


class _Trees:
    """The attribute lists of one TreeEnsembleRegressor."""

    def __init__(self) -> None:
        self.nodes: dict[str, list[Any]] = {k: [] for k in (
            "treeids", "nodeids", "featureids", "modes", "truenodeids", "falsenodeids",
            "missing_value_tracks_true")}
        self.values: list[np.ndarray] = []
        self.targets: dict[str, list[Any]] = {k: [] for k in ("treeids", "nodeids", "ids")}
        self.weights: list[np.ndarray] = []
        self.n_trees = 0

    def add(self, left: np.ndarray, right: np.ndarray, feature: np.ndarray,
            threshold: np.ndarray, nan_left: np.ndarray, leaf: np.ndarray,
            leaf_values: np.ndarray, target_offset: int = 0) -> None:
        """One tree: node arrays, ``leaf_values`` (nodes, targets) read at leaves."""
        tree = self.n_trees
        self.n_trees += 1
        n = len(left)
        ids = np.arange(n)
        self.nodes["treeids"] += [tree] * n
        self.nodes["nodeids"] += ids.tolist()
        self.nodes["featureids"] += np.where(leaf, 0, feature).astype(int).tolist()
        self.nodes["modes"] += ["LEAF" if lf else "BRANCH_LEQ" for lf in leaf]
        self.nodes["truenodeids"] += np.where(leaf, 0, left).astype(int).tolist()
        self.nodes["falsenodeids"] += np.where(leaf, 0, right).astype(int).tolist()
        self.nodes["missing_value_tracks_true"] += np.where(leaf, 0, nan_left).astype(
            int).tolist()
        self.values.append(np.where(leaf, 0.0, threshold))
        leaves = np.flatnonzero(leaf)
        width = leaf_values.shape[1]
        for k in range(width):
            self.targets["treeids"] += [tree] * len(leaves)
            self.targets["nodeids"] += leaves.tolist()
            self.targets["ids"] += [target_offset + k] * len(leaves)
            self.weights.append(leaf_values[leaves, k])

    def node(self, g_input: str, output: str, n_targets: int, aggregate: str,
             double: bool) -> Any:
        from onnx import helper, numpy_helper

        values = np.concatenate(self.values)
        weights = np.concatenate(self.weights) if self.weights else np.zeros(0)
        attrs: dict[str, Any] = {f"nodes_{k}": v for k, v in self.nodes.items()}
        attrs.update({f"target_{k}": v for k, v in self.targets.items()})
        if double:
            attrs["nodes_values_as_tensor"] = numpy_helper.from_array(
                values.astype(np.float64), "nodes_values")
            attrs["target_weights_as_tensor"] = numpy_helper.from_array(
                weights.astype(np.float64), "target_weights")
        else:
            attrs["nodes_values"] = values.astype(np.float32).tolist()
            attrs["target_weights"] = weights.astype(np.float32).tolist()
        return helper.make_node("TreeEnsembleRegressor", [g_input], [output],
                                domain="ai.onnx.ml", n_targets=n_targets,
                                aggregate_function=aggregate, post_transform="NONE", **attrs)


def _model(nodes: list[Any], width: int, output: str, out_width: int, double: bool,
           initializers: list[Any] | None = None) -> Any:
    from onnx import TensorProto, helper

    elem = TensorProto.DOUBLE if double else TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "trees", [helper.make_tensor_value_info("X", elem, [None, width])],
        [helper.make_tensor_value_info(output, TensorProto.UNDEFINED, None)],
        initializers or [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15),
                                                   helper.make_opsetid("ai.onnx.ml", 3)])


def forest_model(est: Any, width: int, regression: bool) -> Any:
    """A scikit-learn random forest or extra trees (one output) as ONNX."""
    trees = _Trees()
    n_targets = 1
    for tree in est.estimators_:
        t = tree.tree_
        leaf = t.children_left == _LEAF
        values = t.value.reshape(t.node_count, -1).astype(np.float64)
        n_targets = values.shape[1]
        nan_left = np.asarray(getattr(t, "missing_go_to_left",
                                      np.zeros(t.node_count)), dtype=bool)
        trees.add(t.children_left, t.children_right, t.feature,
                  _floor32(np.asarray(t.threshold, dtype=np.float64)).astype(np.float64),
                  nan_left, leaf, values)
    output = "variable" if regression else "probabilities"
    node = trees.node("X", output, n_targets, "AVERAGE", double=False)
    return _model([node], width, output, n_targets, double=False)


def hist_gb_model(est: Any, width: int, regression: bool) -> Any:
    """A scikit-learn HistGradientBoosting model (numeric splits only) as ONNX."""
    from onnx import helper, numpy_helper

    trees = _Trees()
    per_iteration = len(est._predictors[0]) if est._predictors else 1
    for stage in est._predictors:
        for k, predictor in enumerate(stage):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            trees.add(nodes["left"], nodes["right"], nodes["feature_idx"],
                      nodes["num_threshold"].astype(np.float64),
                      nodes["missing_go_to_left"].astype(bool), leaf,
                      nodes["value"].astype(np.float64).reshape(-1, 1), target_offset=k)
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    raw = trees.node("X", "raw32", per_iteration, "SUM", double=True)
    nodes = [raw,
             helper.make_node("Cast", ["raw32"], ["raw"], to=11),
             helper.make_node("Add", ["raw", "baseline"], ["score"])]
    init = [numpy_helper.from_array(baseline, "baseline")]
    output = _link(nodes, init, "score", regression=regression, binary=per_iteration == 1)
    return _model(nodes, width, output, per_iteration, double=True, initializers=init)


def _link(nodes: list[Any], init: list[Any], score: str, *, regression: bool, binary: bool,
          slope: float = 1.0) -> str:
    """Append the nodes from a boosted model's raw ``score`` to its output (the identity, a
    sigmoid of ``slope`` times the score as two columns, or a softmax); return the output's name."""
    from onnx import helper, numpy_helper

    if regression:
        nodes.append(helper.make_node("Identity", [score], ["variable"]))
        return "variable"
    if binary:
        init.append(numpy_helper.from_array(np.asarray([1.0]), "one"))
        if slope != 1.0:
            init.append(numpy_helper.from_array(np.asarray(slope), "slope"))
            nodes.append(helper.make_node("Mul", [score, "slope"], ["scaled"]))
            score = "scaled"
        nodes += [helper.make_node("Sigmoid", [score], ["p1"]),
                  helper.make_node("Sub", ["one", "p1"], ["p0"]),
                  helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1)]
    else:
        nodes.append(helper.make_node("Softmax", [score], ["probabilities"], axis=1))
    return "probabilities"


def _lightgbm_tree(root: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[float]] | None:
    """One LightGBM tree as ONNX node rows ``(id, feature, mode, threshold, true, false,
    nan_true)`` and leaf values by node id; None for a split it cannot write exactly."""
    rows: list[tuple[Any, ...]] = []
    leaves: dict[int, float] = {}
    counter = [0]

    def new_id() -> int:
        counter[0] += 1
        return counter[0] - 1

    def build(node: dict[str, Any], my_id: int) -> bool:
        if "split_feature" not in node:
            leaves[my_id] = float(node["leaf_value"])
            return True
        feature = int(node["split_feature"])
        if node["decision_type"] == "<=":
            missing = node.get("missing_type", "None")
            threshold = float(node["threshold"])
            if missing == "NaN":
                nan_true = bool(node["default_left"])
            elif missing == "None":  # NaN is read as 0.0
                nan_true = threshold >= 0.0
            else:  # "Zero": zeros take the default side; not written here
                return False
            left, right = new_id(), new_id()
            rows.append((my_id, feature, "BRANCH_LEQ", threshold, left, right, nan_true))
            return build(node["left_child"], left) and build(node["right_child"], right)
        if node["decision_type"] == "==":
            # A category set: one equality test per category, the last one's "else" is
            # the right child (NaN and negative codes never equal a category: right).
            categories = [float(c) for c in str(node["threshold"]).split("||")]
            left = new_id()
            current = my_id
            for k, category in enumerate(categories):
                last = k == len(categories) - 1
                other = new_id()
                rows.append((current, feature, "BRANCH_EQ", category, left, other, False))
                if not last:
                    current = other
            right = other
            return build(node["left_child"], left) and build(node["right_child"], right)
        return False

    root_id = new_id()
    if not build(root, root_id):
        return None
    values = [0.0] * counter[0]
    for node_id, value in leaves.items():
        values[node_id] = value
    leaf_rows = [(node_id, 0, "LEAF", 0.0, 0, 0, False) for node_id in leaves]
    return sorted(rows + leaf_rows), values


def lightgbm_model(est: Any, width: int, regression: bool) -> Any | None:
    """A LightGBM model as ONNX in double (LightGBM compares doubles with double
    thresholds: exact), or None where a split, objective or option has no exact form here
    (the caller then uses onnxmltools' float32 converter)."""
    from onnx import helper

    dump = est.booster_.dump_model()
    objective = str(dump.get("objective", ""))
    name = objective.split()[0] if objective else ""
    n_class = int(dump.get("num_class", 1))
    if regression and name not in ("regression", "regression_l1", "huber", "fair",
                                    "quantile", "mape"):
        return None
    if not regression and name not in ("binary", "multiclass"):
        return None
    if dump.get("average_output"):
        return None
    sigmoid = 1.0
    if name == "binary":
        for part in objective.split()[1:]:
            if part.startswith("sigmoid:"):
                sigmoid = float(part.split(":", 1)[1])
    trees = _Trees()
    for i, info in enumerate(dump["tree_info"]):
        built = _lightgbm_tree(info["tree_structure"])
        if built is None:
            return None
        rows, values = built
        n = len(rows)
        ids = np.asarray([r[0] for r in rows])
        if not np.array_equal(ids, np.arange(n)):
            return None
        leaf = np.asarray([r[2] == "LEAF" for r in rows])
        tree = trees.n_trees
        trees.add(np.asarray([r[4] for r in rows]), np.asarray([r[5] for r in rows]),
                  np.asarray([r[1] for r in rows]), np.asarray([r[3] for r in rows],
                                                               dtype=np.float64),
                  np.asarray([r[6] for r in rows]), leaf,
                  np.asarray(values, dtype=np.float64).reshape(-1, 1),
                  target_offset=i % n_class)
        modes = trees.nodes["modes"]
        start = len(modes) - n
        for j, r in enumerate(rows):  # equality tests keep their mode
            if r[2] == "BRANCH_EQ":
                modes[start + j] = "BRANCH_EQ"
        assert trees.n_trees == tree + 1
    raw = trees.node("X", "raw32", n_class, "SUM", double=True)
    nodes = [raw, helper.make_node("Cast", ["raw32"], ["raw"], to=11)]
    init: list[Any] = []
    output = _link(nodes, init, "raw", regression=regression, binary=n_class == 1,
                   slope=float(sigmoid))
    return _model(nodes, width, output, n_class, double=True, initializers=init)
