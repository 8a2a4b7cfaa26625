"""A fitted :class:`~mlwright.search.ensemble.Ensemble` as one ONNX graph.

The graph takes one input per contract column, shape ``[N, 1]``: numbers and dates as
``double`` (dates as seconds since 1970-01-01 UTC; NaN is missing), categories, booleans and
text as ``string`` (``""`` is missing; a text column reads ``""`` as Python's ``as_text``
does). Inside it:

* the preprocessing of every style as ONNX nodes: category maps (``LabelEncoder`` to an
  index, then a ``Gather`` from a table of doubles: ordinal codes, one-hot columns, target
  encodings), the linear style's clipping, median fill, missing indicators and scaling,
  boolean tokens, date parts by epoch arithmetic (civil-from-days in doubles, exact for
  whole seconds), and text (:mod:`mlwright.export.text`: tokens, per-character lowering
  by table, TF-IDF, the tree style's naive Bayes or ridge scores and lengths);
* every member, converted by :mod:`mlwright.export.trees` (scikit-learn forests,
  HistGradientBoosting and LightGBM, exact; onnxmltools for a LightGBM option it does not
  write), onnxmltools (XGBoost), CatBoost's own exporter or skl2onnx (linear models, MLP),
  fed float32 (trees that compare in float32) or double (the others);
* the blend in doubles: each member's probabilities spread over the ensemble's classes,
  target transforms and clips, weights; then the label (threshold or argmax).

Outputs: ``label`` (strings: ``str`` of each class) and ``probabilities`` ``[N, classes]``
for a classifier; ``prediction`` ``[N]`` for a regression. What cannot be converted
exactly raises :class:`~mlwright.exceptions.ExportError` naming the member or column and
the fix. Parity against the Python predictor is :mod:`mlwright.export.parity`'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwright._lazy import require
from mlwright.data.contract.rules import FALSE_TOKENS, TRUE_TOKENS
from mlwright.exceptions import ExportError

__all__ = ["INPUT_KINDS", "build_graph", "input_kinds"]

# What each input column is fed as (the runtime's feeder reads this from the metadata).
INPUT_KINDS = ("number", "date", "string", "text")
OPSET = 15  # the default domain; converters are asked for it (onnxmltools stops at 15)
ML_OPSET = 3
_FEATURE = "features"
_SECONDS_PER_DAY = 86_400.0
_RETRAIN = ("retrain without it, e.g. 'mlwright train ... --families lightgbm,xgboost,"
            "random_forest,extra_trees,linear'")


def _onnx() -> Any:
    return require("onnx", feature="ONNX export", extra="onnx")


@dataclass
class _Graph:
    """Nodes, constants and names of the graph being built."""

    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    counter: int = 0

    def name(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_{self.counter}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.float64) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        array = np.asarray(value, dtype=dtype) if dtype is not object else np.asarray(
            value, dtype=object)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None,
           domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], domain=domain or None,
                                           **attrs))
        return out

    def where_nan(self, condition: str, value: str) -> str:
        return self.op("Where", [condition, self.const(np.nan), value])

    def floor_div(self, x: str, d: float) -> str:
        return self.op("Floor", [self.op("Div", [x, self.const(d)])])

    def lookup(self, x: str, keys: list[str], table: np.ndarray, default: int) -> str:
        """``table[index of x in keys]`` (``table[default]`` for any other string): a
        LabelEncoder to an index, then a Gather of exact doubles. ``x`` is ``[N, 1]``; the
        result ``[N, table width]``."""
        flat = self.op("Reshape", [x, self.const([-1], dtype=np.int64)])
        index = self.op("LabelEncoder", [flat], domain="ai.onnx.ml",
                        keys_strings=list(keys),
                        values_int64s=list(range(len(keys))), default_int64=default)
        table = np.asarray(table, dtype=np.float64).reshape(len(table), -1)
        return self.op("Gather", [self.const(table), index], axis=0)


def input_kinds(model: Any) -> dict[str, str]:
    """``column -> "number" | "date" | "string" | "text"`` for every column a member's
    preprocessing reads, in the model's feature order (text is fed as Python's
    ``as_text`` writes it: missing as ``""``, no marker for an empty text)."""
    kinds: dict[str, str] = {}
    for prep in model.preps.values():
        plan = prep.plan
        for c in plan.numeric:
            kinds[c] = "number"
        for c in plan.datetime:
            kinds[c] = "date"
        for c in [*plan.categorical, *plan.high_cardinality, *plan.boolean]:
            kinds[c] = "string"
        for c in plan.text:
            kinds[c] = "text"
    order = [c for c in model.feature_names if c in kinds]
    return {c: kinds[c] for c in order + [c for c in kinds if c not in order]}


# ---- preprocessing ----------------------------------------------------------------------------

def _check_keys(column: str, keys: Any) -> None:
    if "" in keys:
        raise ExportError(
            f"Column {column!r} has the empty string as a category, but the ONNX model reads "
            f"an empty string as a missing value. Replace empty strings in {column!r} (e.g. "
            f"by 'none') and retrain, or export the model in another format.")


def _date_parts(g: _Graph, seconds: str, parts: list[str], origin: float) -> list[str]:
    """DatetimeFeatures' parts of ``seconds`` (whole seconds since the epoch, double):
    Howard Hinnant's civil_from_days, every step an exact integer in doubles."""
    days = g.floor_div(seconds, _SECONDS_PER_DAY)
    z = g.op("Add", [days, g.const(719_468.0)])
    era = g.floor_div(z, 146_097.0)
    doe = g.op("Sub", [z, g.op("Mul", [era, g.const(146_097.0)])])
    yoe_num = g.op("Sub", [g.op("Add", [g.op("Sub", [doe, g.floor_div(doe, 1460.0)]),
                                        g.floor_div(doe, 36_524.0)]),
                           g.floor_div(doe, 146_096.0)])
    yoe = g.floor_div(yoe_num, 365.0)
    y = g.op("Add", [yoe, g.op("Mul", [era, g.const(400.0)])])
    doy = g.op("Sub", [doe, g.op("Sub", [g.op("Add", [g.op("Mul", [yoe, g.const(365.0)]),
                                                      g.floor_div(yoe, 4.0)]),
                                         g.floor_div(yoe, 100.0)])])
    mp = g.floor_div(g.op("Add", [g.op("Mul", [doy, g.const(5.0)]), g.const(2.0)]), 153.0)
    day = g.op("Add", [g.op("Sub", [doy, g.floor_div(
        g.op("Add", [g.op("Mul", [mp, g.const(153.0)]), g.const(2.0)]), 5.0)]), g.const(1.0)])
    month = g.op("Where", [g.op("Less", [mp, g.const(10.0)]), g.op("Add", [mp, g.const(3.0)]),
                           g.op("Sub", [mp, g.const(9.0)])])
    early = g.op("Cast", [g.op("LessOrEqual", [month, g.const(2.0)])], to=11)
    year = g.op("Add", [y, early])
    # Days from the epoch to January 1st of ``year`` (the same algorithm, backwards).
    y1 = g.op("Sub", [year, g.const(1.0)])
    era1 = g.floor_div(y1, 400.0)
    yoe1 = g.op("Sub", [y1, g.op("Mul", [era1, g.const(400.0)])])
    doe1 = g.op("Add", [g.op("Sub", [g.op("Add", [g.op("Mul", [yoe1, g.const(365.0)]),
                                                  g.floor_div(yoe1, 4.0)]),
                                     g.floor_div(yoe1, 100.0)]), g.const(306.0)])
    jan1 = g.op("Sub", [g.op("Add", [g.op("Mul", [era1, g.const(146_097.0)]), doe1]),
                        g.const(719_468.0)])
    dow_num = g.op("Add", [days, g.const(3.0)])
    computed = {
        "year": year,
        "month": month,
        "day": day,
        "dayofweek": g.op("Sub", [dow_num, g.op("Mul", [g.floor_div(dow_num, 7.0),
                                                         g.const(7.0)])]),
        "dayofyear": g.op("Add", [g.op("Sub", [days, jan1]), g.const(1.0)]),
        "hour": g.op("Div", [g.op("Sub", [seconds, g.op("Mul", [days, g.const(
            _SECONDS_PER_DAY)])]), g.const(3600.0)]),
    }
    out = []
    for part in parts:
        if part not in computed:
            raise ExportError(f"date part {part!r} has no ONNX form")
        out.append(computed[part])
    out.append(g.op("Div", [g.op("Sub", [seconds, g.const(origin)]),
                            g.const(_SECONDS_PER_DAY)]))
    return out


def _booleans(g: _Graph, x: str, positive: str | None) -> str:
    """``TablePrep._bool``: the positive label -> 1, any other -> 0 (or the contract's
    true/false tokens, any case); missing -> NaN."""
    if positive is not None:
        return g.lookup(x, [positive, ""], np.asarray([1.0, np.nan, 0.0]), 2)
    flat = g.op("Reshape", [x, g.const([-1], dtype=np.int64)])
    lower = g.op("StringNormalizer", [flat], case_change_action="LOWER",
                 locale="C")  # ASCII tokens; "C" exists on every machine
    tokens = sorted(TRUE_TOKENS) + sorted(FALSE_TOKENS)
    table = [1.0] * len(TRUE_TOKENS) + [0.0] * len(FALSE_TOKENS) + [np.nan]
    shaped = g.op("Reshape", [lower, g.const([-1, 1], dtype=np.int64)])
    return g.lookup(shaped, tokens, np.asarray(table), len(tokens))


def _prep_nodes(g: _Graph, prep: Any, inputs: dict[str, str]) -> str:
    """The design matrix of ``prep.transform`` as ``[N, width]`` doubles."""
    plan = prep.plan
    linear = prep.style == "linear"
    dense: list[str] = []
    for c, lookup in prep.ordinal_.items():
        _check_keys(c, lookup)
        keys = list(lookup)
        codes = np.asarray([*lookup.values(), -1.0])
        dense.append(g.lookup(inputs[c], keys, codes, len(keys)))
    if plan.numeric:
        num = (g.op("Concat", [inputs[c] for c in plan.numeric], axis=1)
               if len(plan.numeric) > 1 else inputs[plan.numeric[0]])
        if linear:
            s = prep.num_stats_
            num = g.where_nan(g.op("IsInf", [num]), num)
            missing = g.op("IsNaN", [num])
            clipped = g.op("Max", [g.op("Min", [num, g.const(s["hi"])]), g.const(s["lo"])])
            filled = g.op("Where", [missing, g.const(s["median"]), clipped])
            dense.append(g.op("Div", [g.op("Sub", [filled, g.const(s["mean"])]),
                                      g.const(s["std"])]))
            indicator = np.flatnonzero(np.asarray(s["indicator"], dtype=bool))
            if len(indicator):
                picked = g.op("Gather", [missing, g.const(indicator, dtype=np.int64)], axis=1)
                dense.append(g.op("Cast", [picked], to=11))
        else:
            dense.append(num)
    for c, (positive, fill) in prep.bool_.items():
        encoded = _booleans(g, inputs[c], positive)
        if linear:
            encoded = g.op("Where", [g.op("IsNaN", [encoded]), g.const([fill]), encoded])
        dense.append(encoded)
    for c, lookup in prep.onehot_.items():
        _check_keys(c, lookup)
        keys = [k for k in lookup if k != "__missing__"]
        index = g.op("Reshape", [g.op("LabelEncoder", [g.op("Reshape", [
            inputs[c], g.const([-1], dtype=np.int64)])], domain="ai.onnx.ml",
            keys_strings=[*keys, ""],
            values_int64s=[*(lookup[k] for k in keys),
                           lookup.get("__missing__", lookup["__infrequent__"])],
            default_int64=lookup["__infrequent__"]), g.const([-1, 1], dtype=np.int64)])
        hot = g.op("Equal", [index, g.const(np.arange(len(lookup)), dtype=np.int64)])
        dense.append(g.op("Cast", [hot], to=11))
    if prep.target_enc_:
        blocks = []
        for c, (lookup, prior) in prep.target_enc_.items():
            _check_keys(c, lookup)
            keys = [k for k in lookup if k != "__missing__"]
            rows = [np.atleast_1d(lookup[k]) for k in keys]
            rows.append(np.atleast_1d(lookup.get("__missing__", prior)))
            rows.append(np.atleast_1d(prior))
            blocks.append(g.lookup(inputs[c], [*keys, ""], np.vstack(rows), len(keys) + 1))
        te = g.op("Concat", blocks, axis=1) if len(blocks) > 1 else blocks[0]
        dense.append(g.op("Div", [g.op("Sub", [te, g.const(prep.te_mean_)]),
                                  g.const(prep.te_std_)]))
    if prep.dates_ is not None:
        parts: list[str] = []
        for name, names in prep.dates_.parts_.items():
            parts += _date_parts(g, inputs[name], names, float(prep.dates_.origin_[name]))
        block = g.op("Concat", parts, axis=1)
        if linear:
            s = prep.date_stats_
            block = g.op("Where", [g.op("IsNaN", [block]), g.const(s["median"]), block])
            block = g.op("Div", [g.op("Sub", [block, g.const(s["mean"])]), g.const(s["std"])])
        dense.append(block)
    # Text last, as TablePrep stacks it: tree scores and lengths, or the TF-IDF itself.
    from mlwright.export.text import text_scores, tfidf_block

    for c, vec in prep.text_.items():
        dense.append(tfidf_block(g, c, inputs[c], vec) if linear
                     else text_scores(g, c, inputs[c], vec))
    if not dense:
        raise ExportError("the preprocessing produces no features")
    return g.op("Concat", dense, axis=1, hint=f"{_FEATURE}_{prep.style}") if len(dense) > 1 \
        else dense[0]


# ---- members ----------------------------------------------------------------------------------

@dataclass
class _Converted:
    model: Any           # onnx.ModelProto of the member alone, input "X"
    dtype: Any           # what its input "X" takes: np.float32 or np.float64
    output: str          # the output holding probabilities (classes) or values
    float32_of_double: bool = False  # compares in float32 what the model compares in double


def _member_name(i: int, member: dict[str, Any]) -> str:
    return f"member {i} ({member.get('family', type(member['estimator']).__name__)})"


def _sklearn(est: Any, width: int, dtype: Any, regression: bool) -> Any:
    skl2onnx = require("skl2onnx", feature="ONNX export", extra="onnx")
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    kind = DoubleTensorType if dtype == np.float64 else FloatTensorType
    options = None if regression else {id(est): {"zipmap": False}}
    return skl2onnx.convert_sklearn(est, initial_types=[("X", kind([None, width]))],
                                    target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
                                    options=options)


def _catboost(est: Any) -> Any:
    """CatBoost's own exporter, its ZipMap left out (the probabilities as a tensor)."""
    import tempfile
    from pathlib import Path

    onnx = _onnx()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catboost.onnx"
        est.model_.save_model(str(path), format="onnx")
        onx = onnx.load(str(path))
    return onx


def _convert_member(i: int, member: dict[str, Any], width: int, n_ordinal: int,
                    regression: bool) -> _Converted:
    est = member["estimator"]
    module = type(est).__module__
    cls = type(est).__name__
    who = _member_name(i, member)
    if module.startswith("sklearn.neighbors"):
        raise ExportError(
            f"{who} is a k-nearest-neighbours model: its ONNX form embeds every training row "
            f"and its distance ties are not reproduced exactly, so it is not exported. To "
            f"export, {_RETRAIN} (k-NN left out).")
    if cls.startswith("HistGradientBoosting") and getattr(
            est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
        raise ExportError(
            f"{who} is a HistGradientBoosting model with categorical splits, which have no "
            f"exact ONNX form. To export, {_RETRAIN} (hist_gb left out).")
    out = "variable" if regression else "probabilities"
    if module.startswith("lightgbm"):
        from mlwright.export.trees import lightgbm_model

        exact = lightgbm_model(est, width, regression)
        if exact is not None:
            return _Converted(exact, np.float64, out)
        onnxmltools = require("onnxmltools", feature="ONNX export", extra="onnx")
        from onnxmltools.convert.common.data_types import FloatTensorType

        onx = onnxmltools.convert_lightgbm(
            est,
            initial_types=[("X", FloatTensorType([None, width]))], target_opset=OPSET,
            zipmap=False)
        return _Converted(onx, np.float32, out, float32_of_double=True)
    if module.startswith("xgboost"):
        onnxmltools = require("onnxmltools", feature="ONNX export", extra="onnx")
        from onnxmltools.convert.common.data_types import FloatTensorType

        onx = onnxmltools.convert_xgboost(
            est, initial_types=[("X", FloatTensorType([None, width]))], target_opset=OPSET)
        return _Converted(onx, np.float32, out)
    if cls == "CatBoostModel":
        if est.n_ordinal:
            raise ExportError(
                f"{who} is a CatBoost model with categorical features ({est.n_ordinal} "
                f"columns), which CatBoost's ONNX exporter does not support. To export, "
                f"{_RETRAIN} (catboost left out), or retrain on a table whose categories "
                f"are numbers.")
        return _Converted(_catboost(est), np.float32,
                          "predictions" if regression else "probability_tensor")
    if module.startswith("sklearn.linear_model") or module.startswith(
            "sklearn.neural_network"):
        return _Converted(_sklearn(est, width, np.float64, regression), np.float64, out)
    if module.startswith("sklearn.ensemble") and hasattr(est, "estimators_") and hasattr(
            np.ravel(est.estimators_)[0], "tree_") and getattr(est, "n_outputs_", 1) == 1:
        from mlwright.export.trees import forest_model

        return _Converted(forest_model(est, width, regression), np.float32, out)
    if cls.startswith("HistGradientBoosting"):
        from mlwright.export.trees import hist_gb_model

        if regression and getattr(est, "loss", "squared_error") != "squared_error":
            raise ExportError(f"{who} uses the loss {est.loss!r}, whose link has no ONNX "
                              f"form here. To export, {_RETRAIN}.")
        return _Converted(hist_gb_model(est, width, regression), np.float64, out)
    raise ExportError(
        f"{who} is a {cls}, which has no ONNX converter in mlwright. To export, {_RETRAIN}.")


def _inline(g: _Graph, converted: _Converted, prefix: str, features: str) -> str:
    """Copy a member's graph into ``g``, its names prefixed, fed ``features``; returns its
    output (probabilities or values) as double."""
    from onnx import compose

    onx = compose.add_prefix(converted.model, prefix)
    graph = onx.graph
    (x,) = [inp.name for inp in graph.input]
    cast = 1 if converted.dtype == np.float32 else 11
    g.nodes.append(_identity(g, features, x, cast))
    g.nodes.extend(graph.node)
    g.initializers.extend(graph.initializer)
    return g.op("Cast", [prefix + converted.output], to=11)


def _identity(g: _Graph, source: str, target: str, to: int) -> Any:
    from onnx import helper

    return helper.make_node("Cast", [source], [target], to=to)


# ---- the whole model --------------------------------------------------------------------------

def build_graph(model: Any, *, name: str = "mlwright") -> Any:
    """The ONNX ``ModelProto`` of a fitted Ensemble (see the module docstring).

    Raises:
        ExportError: a member or column without an exact ONNX form (the message names it
            and the fix).
    """
    onnx = _onnx()
    from onnx import TensorProto, helper

    from mlwright.search.ensemble import Ensemble

    if not isinstance(model, Ensemble):
        raise ExportError(f"Only mlwright ensembles are exported to ONNX, got "
                          f"{type(model).__name__}.")
    regression = str(model.task) == "regression"
    g = _Graph()
    kinds = input_kinds(model)
    graph_inputs = []
    inputs: dict[str, str] = {}
    for column, kind in kinds.items():
        elem = TensorProto.STRING if kind in ("string", "text") else TensorProto.DOUBLE
        graph_inputs.append(helper.make_tensor_value_info(column, elem, [None, 1]))
        inputs[column] = column
    features = {style: _prep_nodes(g, prep, inputs) for style, prep in model.preps.items()}
    classes = None if regression else list(model.classes_)
    total: str | None = None
    inexact: list[int] = []
    for i, member in enumerate(model.members):
        prep = model.preps[member["style"]]
        width = len(prep.feature_names_out_)
        converted = _convert_member(i, member, width, prep.n_ordinal_, regression)
        if converted.float32_of_double:
            inexact.append(i)
        out = _inline(g, converted, f"m{i}_", features[member["style"]])
        if regression:
            out = g.op("Reshape", [out, g.const([-1], dtype=np.int64)])
            if member.get("target_transform") == "log":
                out = g.op("Sub", [g.op("Exp", [out]), g.const(1.0)])
            if member.get("clip") is not None:
                lo, hi = member["clip"]
                out = g.op("Max", [g.op("Min", [out, g.const(hi)]), g.const(lo)])
        else:
            assert classes is not None
            seen = getattr(member["estimator"], "classes_", None)
            seen = np.arange(len(classes)) if seen is None else np.asarray(seen).astype(int)
            if not np.array_equal(seen, np.arange(len(classes))):
                spread = np.zeros((len(seen), len(classes)))
                spread[np.arange(len(seen)), seen] = 1.0
                out = g.op("MatMul", [out, g.const(spread)])
        weighted = g.op("Mul", [out, g.const(float(member["weight"]))])
        total = weighted if total is None else g.op("Add", [total, weighted])
    assert total is not None
    outputs = []
    if regression:
        g.nodes.append(helper.make_node("Identity", [total], ["prediction"]))
        outputs.append(helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, [None]))
    else:
        assert classes is not None
        g.nodes.append(helper.make_node("Identity", [total], ["probabilities"]))
        threshold = getattr(model, "threshold", None)
        if threshold is not None and len(classes) == 2:
            second = g.op("Gather", [total, g.const(1, dtype=np.int64)], axis=1)
            index = g.op("Cast", [g.op("GreaterOrEqual", [second, g.const(threshold)])],
                         to=7)
        else:
            index = g.op("ArgMax", [total], axis=1, keepdims=0)
        labels = g.const([str(c) for c in classes], dtype=object)
        g.nodes.append(helper.make_node("Gather", [labels, index], ["label"], axis=0))
        outputs += [helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
                    helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE,
                                                  [None, len(classes)])]
    graph = helper.make_graph(g.nodes, name, graph_inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    if any(node.domain == "com.microsoft" for node in g.nodes):  # the text Tokenizer
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    onx = helper.make_model(graph, opset_imports=opsets, producer_name="mlwright")
    onx.ir_version = 8
    meta = {"mlwright.task": str(model.task), "mlwright.inputs": json.dumps(kinds),
            "mlwright.classes": json.dumps(None if classes is None else
                                           [_jsonable(c) for c in classes]),
            "mlwright.float32_members": json.dumps(inexact)}
    helper.set_model_props(onx, meta)
    onnx.checker.check_model(onx)
    return onx


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
