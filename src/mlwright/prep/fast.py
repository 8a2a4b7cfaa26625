"""Compiled preprocessing: a fitted :class:`TablePrep` as plain lookups over request records.

Serving gets records (dicts keyed by the original column names), not DataFrames. Building a
DataFrame and running ``TablePrep.transform`` costs about 1-3 ms per call, most of it pandas
machinery that a handful of values does not need. :func:`compile_table` reads a fitted
``TablePrep`` once into dicts (category -> code / one-hot column / target encoding), numpy
vectors (medians, quantile clips, scaler means and scales) and TF-IDF vocabularies, and
builds the same design matrix from a :class:`RecordColumns` in numpy alone.

Exactness rule: the compiled matrix equals ``prep.transform(pd.DataFrame(records))``. The
one place where pandas' behaviour leaks into values is dtype inference over a batch (a
category given as ``1`` becomes ``"1.0"`` when another record of the batch misses it, as
the column turns float64); :class:`RecordColumns` reproduces that rule. Anything this module
cannot reproduce with certainty (an unusual value type, a date string outside the strict ISO
forms) raises :class:`FallbackNeeded`, and the caller takes the pandas path instead.

The full record predictor (preprocessing + every ensemble member) is
:func:`mlwright.search.predictor.compile_predictor` (search/, a later stage).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from operator import itemgetter
from typing import Any

import numpy as np

from mlwright.data.contract.rules import to_boolean, to_datetime

__all__ = ["CompiledTable", "FallbackNeeded", "RecordColumns", "compile_table"]

_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
_EPOCH = _dt.datetime(1970, 1, 1)
_UTC = _dt.UTC
_SECONDS_PER_DAY = 86_400.0


class FallbackNeeded(Exception):
    """A value the compiled path cannot reproduce exactly; use the pandas path."""


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


class RecordColumns:
    """A batch of records seen column by column, each view computed once per batch.

    Not shared between threads: one instance per ``predict_records`` call.
    """

    __slots__ = ("_cache", "n", "names", "records")

    def __init__(self, records: list[dict[str, Any]], names: list[str] | None = None) -> None:
        self.records = records
        self.n = len(records)
        self.names = names  # the fields every record usually has (validated records do)
        self._cache: dict[tuple[Any, ...], Any] = {}

    def raw(self, col: str) -> list[Any]:
        key = ("raw", col)
        out = self._cache.get(key)
        if out is None:
            if self.names and len(self.names) > 1 and col in self.names:
                try:  # all named columns in one pass: a C call per record
                    for name, values in zip(self.names, zip(*map(
                            itemgetter(*self.names), self.records), strict=True),
                            strict=True):
                        self._cache[("raw", name)] = list(values)
                    return self._cache[key]
                except KeyError:
                    self.names = None
            out = [r.get(col) for r in self.records]
            self._cache[key] = out
        return out

    def labels(self, col: str) -> list[str | None]:
        """``table._labels`` of the column pandas would build from these records."""
        key = ("labels", col)
        out = self._cache.get(key)
        if out is None:
            out = _labels(self.raw(col))
            self._cache[key] = out
        return out

    def block(self, kind: str, key: tuple[Any, ...], build: Any) -> np.ndarray:
        """A block of the design matrix that depends on the columns alone (not on a style's
        fitted values): built once per batch for every style that reads it. Read-only to
        callers (they copy or derive new arrays)."""
        cache_key = (kind, key)
        out = self._cache.get(cache_key)
        if out is None:
            out = build()
            self._cache[cache_key] = out
        return out

    def numbers(self, col: str) -> np.ndarray:
        key = ("numbers", col)
        out = self._cache.get(key)
        if out is None:
            out = _numbers(self.raw(col), col)
            self._cache[key] = out
        return out

    def datetimes(self, col: str) -> np.ndarray:
        key = ("datetimes", col)
        out = self._cache.get(key)
        if out is None:
            out = _datetimes(self.raw(col), col)
            self._cache[key] = out
        return out

    def texts(self, col: str) -> list[str]:
        """``text.as_text`` of the column: missing -> "", numpy's trailing-NUL strip."""
        key = ("texts", col)
        out = self._cache.get(key)
        if out is None:
            out = [("" if v is None else v.rstrip("\x00")) for v in self.labels(col)]
            self._cache[key] = out
        return out


_STR_OR_NONE = frozenset({str, type(None)})
_NUMBERS = frozenset({int, float, bool, type(None)})
_INT_FLOAT_NONE = frozenset({int, float, type(None)})
_LABELLED = _NUMBERS | {str}


def _labels(values: list[Any]) -> list[str | None]:
    """``table._labels`` of the column pandas builds from ``values`` (missing -> None)."""
    kinds = set(map(type, values))
    if kinds <= _STR_OR_NONE:  # the usual case, at C speed
        return values
    if kinds == {bool}:  # validated booleans, at C speed
        return ["True" if v else "False" for v in values]
    if kinds <= _INT_FLOAT_NONE and kinds != {int}:
        # A float or a missing value makes pandas' column float64 (3 -> 3.0 -> "3.0"),
        # when its ints fit int64 or uint64 (else it is object: str of each).
        ints = [v for v in values if type(v) is int] if int in kinds else [0]
        low, high = min(ints), max(ints)
        if (_INT64[0] <= low and high <= _INT64[1]) or (low >= 0 and high <= _UINT64_MAX):
            return [None if v is None or v != v else str(float(v)) for v in values]
    elif not kinds <= _LABELLED:
        odd = next(t for t in kinds if t not in _LABELLED)
        raise FallbackNeeded(f"value of type {odd.__name__}")
    # An int64 column, or an object one (strings or booleans among numbers): str of each.
    return [None if v is None or v != v else str(v) for v in values]


def _numbers(values: list[Any], col: str) -> np.ndarray:
    kinds = set(map(type, values))
    if kinds <= _NUMBERS:
        return np.array(values if type(None) not in kinds else
                        [np.nan if v is None else v for v in values], dtype=np.float64)
    out = np.empty(len(values))
    for i, v in enumerate(values):
        t = type(v)
        if v is None:
            out[i] = np.nan
        elif t is float or t is int or t is bool:
            out[i] = float(v)
        else:  # text in a numeric column: pandas' coercion rules decide
            raise FallbackNeeded(f"{col}: {t.__name__} in a numeric column")
    return out


def _ns(d: _dt.datetime) -> int:
    if d.tzinfo is not None:
        d = d.astimezone(_UTC).replace(tzinfo=None)
    if not 1678 <= d.year <= 2261:  # outside datetime64[ns]: pandas decides
        raise FallbackNeeded("date outside the nanosecond range")
    delta = d - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _stamp_ns(v: Any, col: str) -> int:
    """Nanoseconds since the epoch (UTC) of a pandas Timestamp: its own count, which keeps
    the nanoseconds a datetime cannot hold (callers building records from a DataFrame send
    Timestamps; they went down the pandas path whole, 43 ms against 0.17)."""
    try:
        return int(v.value)
    except (AttributeError, OverflowError, ValueError) as exc:  # not ns-representable
        raise FallbackNeeded(f"{col}: {type(v).__name__} as a date") from exc


def _datetimes(values: list[Any], col: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int64)
    nat = np.iinfo(np.int64).min
    aware = naive = False
    for i, v in enumerate(values):
        t = type(v)
        if _is_missing(v):
            out[i] = nat
        elif t is str:
            # The contract's date rule, as the pandas path applies it: not a date -> NaT.
            # (Its ISO forms mean the same instant to pandas, to the second features use.)
            stamp = to_datetime(v)
            out[i] = nat if stamp is None else _ns(stamp)
        elif isinstance(v, _dt.datetime):  # a datetime, or a pandas Timestamp
            if v.tzinfo is None:
                naive = True
            else:
                aware = True
            out[i] = _ns(v) if t is _dt.datetime else _stamp_ns(v, col)
        else:
            raise FallbackNeeded(f"{col}: {t.__name__} as a date")
    if aware and naive:  # pandas refuses to mix them in one column
        raise FallbackNeeded(f"{col}: zone-aware and naive datetimes mixed")
    return out.view("datetime64[ns]")


# ---- the compiled table ------------------------------------------------------------------------

class _Tfidf:
    """TfidfVectorizer.transform for a few documents: (row, column indices, values)."""

    def __init__(self, vec: Any) -> None:
        from mlwright.prep.batch import batch_tokenizable

        self.vec = vec
        self.batchable = batch_tokenizable(vec)
        self.analyzer = vec.build_analyzer()
        self.vocabulary = dict(vec.vocabulary_)
        self.idf = np.asarray(vec.idf_, dtype=np.float64) if vec.use_idf else None
        self.sublinear = bool(vec.sublinear_tf)
        self.l2 = vec.norm == "l2"
        self.width = len(self.vocabulary)

    @staticmethod
    def supports(vec: Any) -> bool:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return (type(vec) is TfidfVectorizer and vec.norm in ("l2", None) and not vec.binary
                and vec.dtype in (np.float64, float))

    def transform(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        rows = []
        vocab = self.vocabulary
        for text in texts:
            counts = Counter(j for j in map(vocab.get, self.analyzer(text)) if j is not None)
            idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            vals = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if self.sublinear:
                vals = np.log(vals) + 1.0
            if self.idf is not None:
                vals = vals * self.idf[idx]
            if self.l2:
                norm = math.sqrt(float(vals @ vals))
                if norm:
                    vals = vals / norm
            rows.append((idx, vals))
        return rows

    def batch(self, cols: Any, col: str) -> Any:
        """TF-IDF of a column of many rows: counted in one pass, weighted by scikit-learn's
        own transformer (so the values are the vectorizer's)."""
        from mlwright.prep.batch import word_counts

        texts = cols.texts(col)
        counts = word_counts(self.vec, texts, cols.cache, col) if self.batchable else None
        if counts is None:
            return self.vec.transform(np.asarray(texts, dtype=str))
        return self.vec._tfidf.transform(counts, copy=False)

    def sparse(self, texts: list[str]) -> Any:
        import scipy.sparse as sp

        rows = self.transform(texts)
        indptr = np.cumsum([0, *(len(i) for i, _ in rows)])
        indices = np.concatenate([i for i, _ in rows]) if rows else np.empty(0, np.intp)
        data = np.concatenate([v for _, v in rows]) if rows else np.empty(0)
        m = sp.csr_matrix((data, indices, indptr), shape=(len(texts), self.width))
        m.sort_indices()
        return m


class _TextScores:
    """TextScores.transform: naive-Bayes (or ridge) scores of the TF-IDF, lengths."""

    def __init__(self, scores: Any) -> None:
        from sklearn.linear_model import Ridge
        from sklearn.naive_bayes import MultinomialNB

        model = scores.model_
        self.scores = scores
        self.regression = scores.task == "regression"
        if not _Tfidf.supports(scores.vectorizer_):
            raise TypeError("text vectorizer")
        self.tfidf = _Tfidf(scores.vectorizer_)
        if self.regression:
            if type(model) is not Ridge or np.ndim(model.coef_) != 1:
                raise TypeError(type(model).__name__)
            self.coef = np.asarray(model.coef_, dtype=np.float64)
            self.intercept = float(model.intercept_)
        else:
            if type(model) is not MultinomialNB:
                raise TypeError(type(model).__name__)
            self.flp_t = np.ascontiguousarray(np.asarray(model.feature_log_prob_).T)
            self.prior = np.asarray(model.class_log_prior_, dtype=np.float64)
            self.n_classes = len(scores.classes_)
            self.pos = np.searchsorted(scores.classes_, model.classes_)

    def batch(self, cols: Any, col: str) -> np.ndarray:
        """TextScores.transform of a column of many rows: the TF-IDF counted in one pass
        (:meth:`_Tfidf.batch`), then the fitted text model's own scoring code."""
        texts = cols.texts(col)
        tfidf = self.tfidf.batch(cols, col)
        return np.hstack([self.scores._scores(self.scores.model_, tfidf),
                          self.scores._lengths(np.asarray(texts, dtype=object))])

    def transform(self, texts: list[str]) -> np.ndarray:
        from scipy.special import logsumexp

        rows = self.tfidf.transform(texts)
        n = len(texts)
        if self.regression:
            scores = np.array([[v @ self.coef[i] + self.intercept] for i, v in rows])
            scores = scores.reshape(n, 1)
        else:
            jll = np.vstack([v @ self.flp_t[i] for i, v in rows]) + self.prior
            log_proba = jll - logsumexp(jll, axis=1)[:, None]
            full = np.full((n, self.n_classes), -50.0)
            full[:, self.pos] = log_proba
            scores = full - full.mean(axis=1, keepdims=True)
        lengths = np.array([[float(len(t)), float(len(t.split()))] for t in texts])
        return np.hstack([scores, lengths.reshape(n, 2)])


class _Dates:
    """DatetimeFeatures.transform on nanosecond values (the same numpy arithmetic)."""

    def __init__(self, dates: Any) -> None:
        self.fitted = dates  # batches use its own transform, column-wise already
        self.parts = dict(dates.parts_)
        self.origin = dict(dates.origin_)

    def transform(self, cols: RecordColumns) -> np.ndarray:
        blocks = []
        for name, parts in self.parts.items():
            values = cols.datetimes(name)
            missing = np.isnat(values)
            for part in parts:
                blocks.append(np.where(missing, np.nan, _date_part(values, part)))
            seconds = values.astype("datetime64[s]").astype(np.int64).astype(float)
            blocks.append(np.where(missing, np.nan,
                                   (seconds - self.origin[name]) / _SECONDS_PER_DAY))
        return np.column_stack(blocks) if blocks else np.empty((cols.n, 0))


def _date_part(values: np.ndarray, part: str) -> np.ndarray:
    """One part, with DatetimeFeatures' numpy calendar arithmetic."""
    if part == "year":
        return values.astype("datetime64[Y]").astype(np.int64) + 1970.0
    if part == "month":
        return values.astype("datetime64[M]").astype(np.int64) % 12 + 1.0
    days = values.astype("datetime64[D]")
    if part == "day":
        return (days - values.astype("datetime64[M]")).astype(np.int64) + 1.0
    if part == "dayofweek":
        return (days.astype(np.int64) + 3) % 7 + 0.0  # 1970-01-01: Thursday
    if part == "dayofyear":
        return (days - values.astype("datetime64[Y]")).astype(np.int64) + 1.0
    if part == "hour":
        return (values - days).astype("timedelta64[s]").astype(np.int64) / 3600.0
    raise FallbackNeeded(f"date part {part!r}")


class CompiledTable:
    """A fitted :class:`~mlwright.prep.table.TablePrep` as lookups; see :func:`compile_table`.

    Immutable after construction, so one instance serves any number of threads.
    """

    def __init__(self, prep: Any) -> None:
        from mlwright.prep.table import TablePrep
        from mlwright.prep.text import TextScores

        if type(prep) is not TablePrep or not hasattr(prep, "feature_origin_"):
            raise TypeError(f"not a fitted TablePrep: {type(prep).__name__}")
        self.linear = prep.style == "linear"
        plan = prep.plan
        self.ordinal = [(c, dict(lookup)) for c, lookup in prep.ordinal_.items()]
        self.numeric = list(plan.numeric)
        self.num_stats = {k: np.asarray(v) for k, v in prep.num_stats_.items()}
        self.booleans = list(prep.bool_.items())
        onehot = [(c, dict(lookup), lookup["__infrequent__"])
                  for c, lookup in prep.onehot_.items()]
        self.target_enc = [(c, dict(lookup), prior)
                           for c, (lookup, prior) in prep.target_enc_.items()]
        if self.target_enc:
            self.te_mean, self.te_std = prep.te_mean_, prep.te_std_
        self.dates = _Dates(prep.dates_) if prep.dates_ is not None else None
        self.date_stats = dict(prep.date_stats_)
        self.text: list[tuple[str, Any]] = []
        for c, vec in prep.text_.items():
            if self.linear:
                # A plain word TF-IDF is compiled; anything else (the char n-gram union)
                # keeps sklearn's transform on the same strings, still without pandas.
                self.text.append((c, _Tfidf(vec) if _Tfidf.supports(vec) else vec))
            else:
                if type(vec) is not TextScores:
                    raise TypeError(f"text step {type(vec).__name__}")
                self.text.append((c, _TextScores(vec)))
        self.ordinal_get: list[tuple[str, Any]] = [(c, lookup.get) for c, lookup in self.ordinal]
        indicator = self.num_stats.get("indicator")
        self.indicator = indicator if indicator is not None and indicator.any() else None
        self.bool_fill = np.array([fill for _, (_, fill) in self.booleans])
        offsets = np.cumsum([0, *(len(lookup) for _, lookup, _ in onehot)])
        self.onehot_width = int(offsets[-1])
        self.onehot = [(c, lookup, infrequent, int(off)) for (c, lookup, infrequent), off
                       in zip(onehot, offsets[:-1], strict=True)]
        self.columns = list(plan.used)
        self.width = len(prep.feature_names_out_)
        # Keys of the blocks every style with the same columns shares within one batch.
        self.numeric_key = tuple(self.numeric)
        self.bool_key = tuple((c, positive) for c, (positive, _) in self.booleans)

    def transform(self, cols: Any) -> Any:
        """The design matrix of ``TablePrep.transform`` (numpy, or CSR with linear text),
        from a :class:`RecordColumns` (requests) or a
        :class:`~mlwright.prep.batch.FrameColumns` (batches, column by column)."""
        if not isinstance(cols, RecordColumns):
            return self._transform_batch(cols)
        n = cols.n
        dense: list[np.ndarray] = []
        if self.ordinal:
            # One conversion for the whole block: per-column arrays cost microseconds each.
            codes = [[get(v, -1) for v in cols.labels(c)] for c, get in self.ordinal_get]
            dense.append(np.array(codes, dtype=np.float64).T.reshape(n, -1))
        if self.numeric:
            dense += self._numbers(cols.block("numbers", self.numeric_key, lambda: np.array(
                [cols.numbers(c) for c in self.numeric]).T.reshape(n, -1)))
        if self.booleans:
            encoded = cols.block("booleans", self.bool_key, lambda: np.array(
                [_bools(cols.labels(c), positive) for c, (positive, _) in self.booleans],
                dtype=np.float64).T.reshape(n, -1))
            if self.linear:
                encoded = np.where(np.isnan(encoded), self.bool_fill, encoded)
            dense.append(encoded)
        if self.onehot:
            block = np.zeros((n, self.onehot_width))
            rows: list[int] = []
            hot: list[int] = []
            for c, lookup, infrequent, offset in self.onehot:
                get = lookup.get
                hot += [offset + get("__missing__" if v is None else v, infrequent)
                        for v in cols.labels(c)]
                rows += range(n)
            block[rows, hot] = 1.0
            dense.append(block)
        if self.target_enc:
            te = np.column_stack([
                np.vstack([lookup.get("__missing__" if v is None else v, prior)
                           for v in cols.labels(c)])
                for c, lookup, prior in self.target_enc])
            dense.append((te - self.te_mean) / self.te_std)
        if self.dates is not None:
            parts = self.dates.transform(cols)
            dense.append(self._date_parts(parts))
        if not self.linear:
            dense += [scorer.transform(cols.texts(c)) for c, scorer in self.text]
        # One block alone may be a view shared with other styles (RecordColumns.block).
        matrix = (dense[0].copy() if len(dense) == 1 else np.hstack(dense)) if dense \
            else np.empty((n, 0))
        if not (self.linear and self.text):
            return matrix
        import scipy.sparse as sp

        texts = [vec.sparse(cols.texts(c)) if isinstance(vec, _Tfidf)
                 else vec.transform(np.asarray(cols.texts(c), dtype=str))
                 for c, vec in self.text]
        return sp.hstack([sp.csr_matrix(matrix), *texts], format="csr")

    def _numbers(self, num: np.ndarray) -> list[np.ndarray]:
        """The numeric block as the style wants it: raw for trees; for linear models
        clipped, median-filled and standardised, with the missing indicators."""
        if not self.linear:
            return [num]
        num = np.where(np.isfinite(num), num, np.nan)
        s = self.num_stats
        missing = np.isnan(num)
        filled = np.where(missing, s["median"], np.clip(num, s["lo"], s["hi"]))
        out = [(filled - s["mean"]) / s["std"]]
        if self.indicator is not None:
            out.append(missing[:, self.indicator].astype(np.float64))
        return out

    def _date_parts(self, parts: np.ndarray) -> np.ndarray:
        if not self.linear:
            return parts
        s = self.date_stats
        return (np.where(np.isnan(parts), s["median"], parts) - s["mean"]) / s["std"]

    def _transform_batch(self, cols: Any) -> Any:
        """:meth:`transform` with every lookup made once per distinct value."""
        n = cols.n
        dense: list[np.ndarray] = []
        if self.ordinal:
            dense.append(np.column_stack([
                cols.lookup(c, lambda v, get=get: get(v, -1)) for c, get in self.ordinal_get
            ]).astype(np.float64))
        if self.numeric:
            dense += self._numbers(cols.number_block(self.numeric))
        if self.booleans:
            encoded = np.column_stack([
                cols.lookup(c, lambda v, positive=positive: _bool(v, positive))
                for c, (positive, _) in self.booleans]).astype(np.float64)
            if self.linear:
                encoded = np.where(np.isnan(encoded), self.bool_fill, encoded)
            dense.append(encoded)
        if self.onehot:
            block = np.zeros((n, self.onehot_width))
            rows = np.arange(n)
            for c, lookup, infrequent, offset in self.onehot:
                hot = cols.lookup(c, lambda v, get=lookup.get, other=infrequent: get(
                    "__missing__" if v is None else v, other))
                block[rows, offset + hot.astype(np.intp)] = 1.0
            dense.append(block)
        if self.target_enc:
            te = np.column_stack([
                cols.lookup(c, lambda v, get=lookup.get, prior=prior: get(
                    "__missing__" if v is None else v, prior)).reshape(n, -1)
                for c, lookup, prior in self.target_enc])
            dense.append((te - self.te_mean) / self.te_std)
        if self.dates is not None:
            parts = self.dates.fitted.transform(cols.frame[list(self.dates.parts)])
            dense.append(self._date_parts(parts))
        if not self.linear:
            dense += [scorer.batch(cols, c) for c, scorer in self.text]
        matrix = np.hstack(dense) if dense else np.empty((n, 0))
        if not (self.linear and self.text):
            return matrix
        import scipy.sparse as sp

        texts = [vec.batch(cols, c) if isinstance(vec, _Tfidf)
                 else vec.transform(np.asarray(cols.texts(c), dtype=str))
                 for c, vec in self.text]
        return sp.hstack([sp.csr_matrix(matrix), *texts], format="csr")


def _bools(labels: list[str | None], positive: str | None) -> list[float]:
    """``_bool`` of each label, computed once per distinct label."""
    codes = {v: _bool(v, positive) for v in set(labels)}
    return [codes[v] for v in labels]


def _bool(v: str | None, positive: str | None) -> float:
    if v is None:
        return np.nan
    if positive is not None:
        return 1.0 if v == positive else 0.0
    flag = to_boolean(v)
    return np.nan if flag is None else float(flag)


def compile_table(prep: Any) -> CompiledTable:
    """Compile a fitted ``TablePrep``; raises ``TypeError`` for a construct it cannot read."""
    return CompiledTable(prep)
