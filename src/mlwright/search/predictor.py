"""The prediction hot path: an :class:`~mlwright.search.ensemble.Ensemble` compiled once.

``compile_predictor(model, contract)`` reads a fitted ensemble once (at server start, or at
the first ``Ensemble.predict``) into compiled preprocessing (:mod:`mlwright.prep.fast`) and
one native predictor per member:

* LightGBM: the compiled tree walk (:mod:`mlwright.search.treewalk`: numba, raw scores
  bit for bit the booster's, checked on probe rows at compile time) for a few rows
  (``WALK_VISITS``), for models of 100 trees or more and for batches from
  ``THREADED_ROWS`` rows on, else ``Booster.predict`` on a float64 array;
* XGBoost: the same walk with XGBoost's float32 rules (values bit for bit) for a few rows,
  else ``Booster.inplace_predict`` with the estimator's iteration range, skipping the
  scikit-learn wrapper's checks;
* CatBoost: the same walk (oblivious trees; one-hot and single-feature CTR splits read
  from the model as category bitsets) where the matrix's category codes are ones it read,
  else the wrapped model's ``predict`` with ``thread_count=1`` (its default, -1, starts a
  thread pool per call);
* logistic regression and ridge: a numpy dot product and the link function;
* random forests and extra trees: the same compiled tree walk, else all trees walked at
  once in numpy, level by level, over flat node arrays (the same comparisons as
  ``tree_.predict``: float32 inputs, NaN by ``missing_go_to_left``);
* anything else (kNN, MLP, HistGradientBoosting): the estimator's own predict on the
  compiled matrix.

``predict_records(records)`` then answers exactly what ``model.predict`` /
``model.predict_proba`` on ``pd.DataFrame(records)`` answer, and ``predict_frame(frame)``
what they answer on ``frame``. Small batches of records are read value by value
(:class:`~mlwright.prep.fast.RecordColumns`, no pandas); a DataFrame, or records from
``BATCH_RECORDS`` on when the model reads text, column by column
(:class:`~mlwright.prep.batch.FrameColumns`: one lookup per distinct value, one regex pass
per text column), then every member's native
batch predict and the blend in numpy. Styles with identical fitted preprocessing share one
design matrix, and for a few rows every walked tree member of a design matrix is walked by
one compiled call (:func:`~mlwright.search.treewalk.fuse`). The same object serves
``Ensemble.predict``, the server's micro-batches, ``/v1/predict/batch`` and
``mlwright predict``.

Compilation checks itself on a few synthetic records against the pandas path (read value
by value and column by column); a member (or preprocessing style) that does not match,
or cannot be compiled, is predicted through the pandas path (logged), and a batch holding a
value the compiled path cannot reproduce with certainty goes through the pandas path
whole. The predictor holds no mutable state: one instance serves every thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright._logging import get_logger
from mlwright.prep.fast import CompiledTable, FallbackNeeded, RecordColumns, compile_table
from mlwright.search.duplicate_rows import group_rows
from mlwright.search.members import WALK_VISITS, native_predictor

__all__ = ["BATCH_RECORDS", "CompiledPredictor", "RecordPredictor", "compile_predictor"]

log = get_logger(__name__)

_REGRESSION = "regression"
_CHECK_TOLERANCE = 1e-9
# From this many records on, a DataFrame and column-wise work beat reading value by value,
# for a model that reads text (one regex pass per column, not one per value). Without text,
# building the DataFrame costs more than it saves: 300 telco records, 13.4 ms of CPU
# against 8.9 value by value; 3,200 records, 104 against 82.
BATCH_RECORDS = 256
# Up to this many rows the members' outputs are blended in one stacked reduction.
_STACKED_ROWS = 256
#: Rows of a DataFrame predicted at a time: the design matrices, category labels and
#: member outputs of a larger one are held one part at a time.
FRAME_CHUNK_ROWS = 50_000
# ---- the record predictor ------------------------------------------------------------------

class _Member:
    __slots__ = ("classes", "clip", "estimator", "expm1", "path", "predict", "style", "weight",
                 "whole")

    def __init__(self, member: dict[str, Any], regression: bool) -> None:
        self.style = member["style"]
        self.weight = member["weight"]
        self.estimator = member["estimator"]
        self.expm1 = member.get("target_transform") == "log"
        self.clip = member.get("clip")
        self.predict, self.path = native_predictor(self.estimator, regression)
        seen = getattr(self.estimator, "classes_", None)
        self.classes = None if regression or seen is None else np.asarray(seen).astype(int)
        self.whole: int | None = None  # the class count when it saw classes 0..k-1, in order

    def set_classes(self, n_classes: int) -> None:
        if self.classes is None or np.array_equal(self.classes, np.arange(n_classes)):
            self.whole = n_classes


class CompiledPredictor:
    """Predictions for records or DataFrames, equal to the ensemble's pandas path.

    Build it with :func:`compile_predictor`. Thread-safe: nothing is mutated after
    compilation.
    """

    def __init__(self, model: Any, tables: dict[str, CompiledTable | None],
                 members: list[_Member] | None) -> None:
        self.model = model
        self._tables = tables
        self._members = members
        self.regression = str(getattr(model, "task", "")) == _REGRESSION
        self.classes_ = None if self.regression else np.asarray(model.classes_, dtype=object)
        self.feature_names = list(getattr(model, "feature_names", []))
        self._pandas_members: set[int] = set()
        # Styles whose fitted preprocessing is identical (the tree styles of folds that saw
        # the same categories): one design matrix serves them all.
        self._design_of: dict[str, str] = _same_preps(getattr(model, "preps", {}))
        if members is not None and self.classes_ is not None:
            for m in members:
                m.set_classes(len(self.classes_))
        self._fused = _fuse_members(members or [], self._design_of)
        self._weights = np.array([m.weight for m in members or []], dtype=np.float64)
        reads_text = any(table is not None and table.text for table in tables.values())
        self._frame_from = BATCH_RECORDS if reads_text else None

    # -- public ---------------------------------------------------------------------------
    def predict_records(self, records: list[dict[str, Any]]
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions in the model's label space, class probabilities or None).

        Args:
            records: dicts keyed by the training column names; missing values as None or
                absent; numbers as int/float; categories as str/bool/int; dates as ISO
                strings or datetimes; text as str.
        """
        if self._members is None:
            return self._predict_pandas(self._frame(records))
        if self._frame_from is not None and len(records) >= self._frame_from:
            return self._finish(self.raw_frame(self._frame(records)))
        try:
            raw = self._raw(RecordColumns(records, self.feature_names),
                            lambda: self._frame(records))
        except FallbackNeeded as exc:
            log.debug("pandas path for this batch: %s", exc)
            return self._predict_pandas(self._frame(records))
        return self._finish(raw)

    def predict_frame(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, class probabilities or None) of a DataFrame of the training
        columns (extra columns are ignored; a missing one raises an error naming it)."""
        if self._members is None:
            return self._predict_pandas(frame)
        return self._finish(self.raw_frame(frame))

    def raw_frame(self, frame: Any) -> np.ndarray:
        """What ``Ensemble.raw_predict(frame)`` returns: probabilities (n, classes) or
        values (n,), computed column by column."""
        from mlwright.prep.batch import FrameColumns

        frame = self.model._frame(frame)  # the ensemble's own column checks and messages
        if self._members is None or len(frame) == 0:
            return self.model.raw_predict(frame, compiled=False)
        if len(frame) > FRAME_CHUNK_ROWS:
            # A large frame of few distinct rows (a table of categories) is predicted once
            # per distinct row: military's 354 k test rows hold 924.
            groups = group_rows(frame[self.feature_names], np.zeros(len(frame), np.int8))
            if groups is not None:
                return self.raw_frame(frame.iloc[groups.first])[groups.of_row]
            return np.concatenate([self.raw_frame(frame.iloc[i:i + FRAME_CHUNK_ROWS])
                                   for i in range(0, len(frame), FRAME_CHUNK_ROWS)])
        return self._raw(FrameColumns(frame), lambda: frame)

    def describe(self) -> list[dict[str, Any]]:
        """The prediction path of every member (``pandas`` where it was not compiled)."""
        if self._members is None:
            return [{"member": 0, "path": "pandas"}]
        return [{"member": i, "family": type(m.estimator).__name__, "style": m.style,
                 "path": "pandas" if i in self._pandas_members or self._tables[m.style] is None
                 else m.path} for i, m in enumerate(self._members)]

    # -- internals ------------------------------------------------------------------------
    def _finish(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.regression:
            return raw, None
        assert self.classes_ is not None
        threshold = getattr(self.model, "threshold", None)  # read live: it may be set later
        if threshold is not None and raw.shape[1] == 2:
            idx = (raw[:, 1] >= threshold).astype(int)
        else:
            idx = raw.argmax(axis=1)
        return self.classes_[idx], raw

    def _frame(self, records: list[dict[str, Any]]) -> Any:
        import pandas as pd

        frame = pd.DataFrame(records)
        absent = [c for c in self.feature_names if c not in frame.columns]
        if absent:  # absent everywhere: missing, as an absent key is in one record
            frame = pd.DataFrame(records, columns=[*frame.columns, *absent])
        return frame

    def _predict_pandas(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if self._members is not None:  # an Ensemble: its reference (pandas) path
            return self._finish(self.model.raw_predict(frame, compiled=False))
        if self.regression:
            return np.asarray(self.model.predict(frame)), None
        raw = self.model.predict_proba(frame)
        return self._finish(raw)

    def _member_outputs(self, cols: Any, make_frame: Any, *, compiled: bool
                        ) -> list[np.ndarray]:
        """Every member's output (after its target transform and clip), in order; ``cols``
        the batch's column view, ``make_frame()`` its DataFrame (for members not compiled)."""
        from mlwright.search.ensemble import _member_predict

        assert self._members is not None
        frame = None
        designs: dict[tuple[str, bool], Any] = {}
        walked: dict[int, np.ndarray] = {}  # member -> output, from a fused walk
        outputs = []
        task = self.model.task
        classes = self.model.classes
        for i, m in enumerate(self._members):
            table = self._tables.get(m.style)
            fast = compiled and table is not None and i not in self._pandas_members
            key = (self._design_of.get(m.style, m.style), fast)
            if key not in designs:
                if fast:
                    assert table is not None
                    designs[key] = table.transform(cols)
                else:
                    frame = make_frame() if frame is None else frame
                    designs[key] = self.model.preps[m.style].transform(frame)
            Xt = designs[key]
            if fast and key[0] in self._fused and i not in walked:
                walked.update(self._fused[key[0]].outputs(Xt, self._pandas_members))
            if not fast:
                outputs.append(_member_predict({"estimator": m.estimator,
                                                "target_transform": "log" if m.expm1
                                                else None,
                                                **({"clip": m.clip} if m.clip else {})},
                                               Xt, task, classes))
                continue
            out = walked[i] if i in walked else m.predict(Xt)
            if self.regression:
                out = np.asarray(out, dtype=float).ravel()
                out = np.expm1(out) if m.expm1 else out
                if m.clip is not None:  # np.clip's wrapper costs ~3 µs a call
                    out = np.minimum(np.maximum(out, m.clip[0]), m.clip[1])
            elif m.whole is not None and out.ndim == 2 and out.shape[1] == m.whole:
                out = out if out.dtype == np.float64 else out.astype(np.float64)
            else:
                out = self._full_proba(np.asarray(out, dtype=float), m.classes)
            outputs.append(out)
        return outputs

    def _full_proba(self, proba: np.ndarray, seen: np.ndarray | None) -> np.ndarray:
        assert self.classes_ is not None
        n_classes = len(self.classes_)
        if seen is None:
            seen = np.arange(proba.shape[1])
        if proba.shape[1] == n_classes and np.array_equal(seen, np.arange(n_classes)):
            return proba
        out = np.zeros((proba.shape[0], n_classes))
        out[:, seen] = proba
        return out

    def _raw(self, cols: Any, make_frame: Any) -> np.ndarray:
        assert self._members is not None
        outputs = self._member_outputs(cols, make_frame, compiled=True)
        shape = outputs[0].shape
        if shape[0] <= _STACKED_ROWS and all(o.shape == shape for o in outputs):
            # One product and one reduction over the member axis, which numpy adds in
            # member order: the loop's sums, without its 2 calls per member.
            weights = self._weights.reshape((-1,) + (1,) * len(shape))
            return np.add.reduce(np.stack(outputs) * weights, axis=0)
        total: np.ndarray | None = None
        for m, out in zip(self._members, outputs, strict=True):
            total = out * m.weight if total is None else total + out * m.weight
        assert total is not None
        return total

    def _self_check(self, records: list[dict[str, Any]]) -> None:
        """Members whose compiled output differs from the pandas path on ``records`` take
        the pandas path from now on."""
        from mlwright.prep.batch import FrameColumns

        frame = self._frame(records)
        try:
            fast = self._member_outputs(RecordColumns(records, self.feature_names),
                                        lambda: frame, compiled=True)
        except FallbackNeeded as exc:
            log.warning("self-check records were not compilable (%s)", exc)
            return
        slow = self._member_outputs(None, lambda: frame, compiled=False)
        # The column-wise (batch) path must agree too: the same records, as a frame.
        batch = self._member_outputs(FrameColumns(frame), lambda: frame, compiled=True)
        assert self._members is not None
        for i, (a, c, b) in enumerate(zip(fast, batch, slow, strict=True)):
            if not (_same(a, b) and _same(c, b)):
                log.warning("compiled member %d (%s, %s path) differs from the pandas path; "
                            "it will predict through pandas", i,
                            type(self._members[i].estimator).__name__, self._members[i].path)
                self._pandas_members.add(i)


class _FusedWalk:
    """The tree members reading one design matrix, walked by one compiled call for a few
    rows (each member's own walk would take them too: ``WALK_VISITS``); their outputs are
    the members' own, computed from the same sums."""

    def __init__(self, members: list[tuple[int, Any]]) -> None:
        from mlwright.search.treewalk import fuse

        self.members = members
        self.walker, self.starts = fuse([p.tree_walker for _, p in members])
        self.widths = [p.tree_walker.n_out for _, p in members]
        self.rows = WALK_VISITS // max(p.tree_walker.n_trees for _, p in members)
        # One member per rule (members sharing a ``walk_rule`` take the same rows): ~5 µs
        # of numpy per check, paid once for telco's five LightGBM folds.
        rules: dict[Any, Any] = {}
        for _, p in members:
            rules.setdefault(getattr(p, "walk_rule", None) or id(p), p)
        self.checks = list(rules.values())

    def _walkable(self, X: np.ndarray) -> bool:
        return all(p.walkable(X) for p in self.checks)

    def outputs(self, X: Any, skip: set[int]) -> dict[int, np.ndarray]:
        if not (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2
                and X.shape[0] <= self.rows and self._walkable(X)):
            return {}
        raw = self.walker.raw(np.ascontiguousarray(X))
        return {i: p.from_raw(raw[:, start:start + width])
                for (i, p), start, width in zip(self.members, self.starts, self.widths,
                                                strict=True) if i not in skip}


def _fuse_members(members: list[_Member], design_of: dict[str, str]
                  ) -> dict[str, _FusedWalk]:
    """Design -> the fused walk of its tree members (two or more)."""
    groups: dict[str, list[tuple[int, Any]]] = {}
    for i, m in enumerate(members):
        if getattr(m.predict, "tree_walker", None) is not None:
            groups.setdefault(design_of.get(m.style, m.style), []).append((i, m.predict))
    out = {}
    for design, group in groups.items():
        if len(group) < 2:
            continue
        try:
            out[design] = _FusedWalk(group)
        except Exception as exc:  # keep each member's own walk
            log.debug("no fused walk for %s (%s)", design, exc)
    return out


def _same_preps(preps: dict[str, Any]) -> dict[str, str]:
    """style -> the first style whose fitted preprocessing has the same state (training-
    time caches, attributes starting with ``_``, aside): their transforms are equal."""
    import pickle

    first: dict[bytes, str] = {}
    out = {}
    for style, prep in preps.items():
        try:
            key = pickle.dumps((type(prep).__qualname__, {
                k: v for k, v in vars(prep).items() if not k.startswith("_")}))
        except Exception:  # something unpicklable: its own design matrix
            continue
        out[style] = first.setdefault(key, style)
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=0, atol=_CHECK_TOLERANCE,
                                              equal_nan=True)


def _check_records(model: Any, contract: Any) -> list[dict[str, Any]]:
    """A few records touching every compiled construct: all missing, known values,
    unseen categories, odd numbers, dates and text."""
    columns: dict[str, list[Any]] = {}
    for prep in model.preps.values():
        plan = prep.plan
        for c in plan.numeric:
            columns[c] = [0, 1.5, -3.25e6, float("inf")]
        for c in [*plan.categorical, *plan.high_cardinality]:
            known = [*getattr(prep, "ordinal_", {}).get(c, {}),
                     *getattr(prep, "onehot_", {}).get(c, {}),
                     *getattr(prep, "target_enc_", {}).get(c, ({}, None))[0]]
            known = [k for k in known if not k.startswith("__")] or ["x"]
            columns[c] = [known[0], known[-1], "__never_seen__", known[len(known) // 2]]
        for c in plan.boolean:
            positive = prep.bool_.get(c, (None, 0.0))[0]
            columns[c] = ([positive, "__other__", positive, True] if positive is not None
                          else [True, False, "no", "yes"])
        for c in plan.datetime:
            columns[c] = ["2016-03-04T05:06:07Z", "2019-12-31", "2018-07-01T12:00:00+02:00",
                          "2020-02-29 23:59:59.5"]
        for c in plan.text:
            columns[c] = ["Great rally tonight! #MAGA @user https://t.co/x", "the", "",
                          "Thank you very much for the crooked fake news!!"]
    if contract is not None:
        for c in columns:
            try:
                categories = contract.column(c).categories
            except Exception:
                continue
            if categories:
                columns[c][3] = categories[0]
    rows = [{c: v[i] for c, v in columns.items()} for i in range(4)]
    rows.append(dict.fromkeys(columns))
    return rows


RecordPredictor = CompiledPredictor  # its name before it took DataFrames too


def compile_predictor(model: Any, contract: Any = None) -> CompiledPredictor:
    """Compile a fitted model for record prediction (call once, at server start).

    Args:
        model: a fitted :class:`~mlwright.search.ensemble.Ensemble`. Any other estimator
            gets a predictor that goes through ``pd.DataFrame(records)`` (same interface).
        contract: the model's :class:`~mlwright.data.contract.Contract`, if at hand; its
            categories and ranges enrich the self-check records.

    Returns:
        a :class:`CompiledPredictor`; ``predict_records(records)`` and
        ``predict_frame(frame)`` return (predictions, class probabilities in
        ``model.classes_`` order, or None for regression).
    """
    from mlwright.search.ensemble import Ensemble

    if not isinstance(model, Ensemble):
        log.debug("%s is not an Ensemble: records predicted through pandas",
                  type(model).__name__)
        return CompiledPredictor(model, {}, None)
    regression = model.task == _REGRESSION
    tables: dict[str, CompiledTable | None] = {}
    for style, prep in model.preps.items():
        try:
            tables[style] = compile_table(prep)
        except Exception as exc:
            log.debug("preprocessing %r not compiled (%s); its members use pandas", style, exc)
            tables[style] = None
    members = [_Member(m, regression) for m in model.members]
    predictor = CompiledPredictor(model, tables, members)
    predictor._self_check(_check_records(model, contract))
    return predictor
