"""scikit-learn tree ensembles as ONNX ``TreeEnsembleRegressor`` nodes, written here.

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

Each returns a ``ModelProto`` with input ``X`` and output ``probabilities`` (classes) or
``variable`` (values), as the other converters' members.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["forest_model", "hist_gb_model"]

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
    if regression:
        nodes.append(helper.make_node("Identity", ["score"], ["variable"]))
        output = "variable"
    elif per_iteration == 1:
        init.append(numpy_helper.from_array(np.asarray([1.0]), "one"))
        nodes += [helper.make_node("Sigmoid", ["score"], ["p1"]),
                  helper.make_node("Sub", ["one", "p1"], ["p0"]),
                  helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1)]
        output = "probabilities"
    else:
        nodes.append(helper.make_node("Softmax", ["score"], ["probabilities"], axis=1))
        output = "probabilities"
    return _model(nodes, width, output, per_iteration, double=True, initializers=init)
