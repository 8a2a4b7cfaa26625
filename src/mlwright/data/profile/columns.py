"""Per-column statistics from one exact pass (missing, distinct, quantiles, top values,
chart data) plus sampled text statistics; table facts (duplicate rows, memory)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.kinds import ColumnKind, Task, infer_kind
from mlwright.data.profile.result import ColumnProfile

TOP_VALUES = 10
BAR_VALUES = 20
HIST_BINS = 40
TIMELINE_BINS = 60
# A numeric column with at most this many values is drawn as bars, one per value.
DISCRETE_MAX = 25
TEXT_SAMPLE = 10_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_WORD = re.compile(r"[a-z][a-z']{2,}")
_STOPWORD_TEXT = (
    "the and for are but not you all any can had her was one our out has him his how its may "
    "new now old see two who did get let say she too use with that this have from they will "
    "what been were when your more than them then into just like some only over also very "
    "about which their there would could should these those other after again being here "
    "http https www amp"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass
class _Tally:
    """Exact counts for one column, from one pass (a sort for numbers, a hash otherwise)."""

    distinct: int
    top: pd.Series  # the most frequent values and their counts, most frequent first
    total: int  # non-missing values
    key: np.ndarray  # a uint64 per row, equal for equal values (for duplicate rows)
    missing: np.ndarray  # True where the value is missing (as pandas' isna)
    ordered: np.ndarray | None = None  # numbers: the non-missing values, sorted
    as_text: bool = False  # unhashable values, counted by their text


def _tally(series: pd.Series, keep: int) -> _Tally:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iufmM":
        # Sorting is 5-10x faster than hashing for numbers and needs no Python objects.
        arr = series.to_numpy()
        if dtype.kind in "mM":
            ints = arr.view(np.int64)
            missing = ints == np.iinfo(np.int64).min  # NaT
            key = ints.view(np.uint64)
            values = ints[~missing]
        elif dtype.kind == "f":
            missing = np.isnan(arr)
            # +0.0 folds -0.0 into 0.0; every NaN gets the same bits.
            key = np.where(missing, np.nan, arr + 0.0).view(np.uint64)
            values = arr[~missing]
        else:
            missing = np.zeros(len(arr), dtype=bool)
            key = arr.astype(np.int64, copy=False).view(np.uint64) if dtype.kind == "i" \
                else arr.astype(np.uint64, copy=False)
            values = arr
        ordered = np.sort(values)
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) \
            else np.array([], dtype=np.int64)
        counts = np.diff(np.r_[starts, len(ordered)])
        uniques = ordered[starts]
        as_text = False
    else:
        ordered = None
        as_text = False
        try:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        except TypeError:  # unhashable values (lists, dicts from JSON): count their text
            as_text = True
            codes, uniques = pd.factorize(series.astype(str).where(series.notna()),
                                          use_na_sentinel=True)
        codes = np.asarray(codes)
        missing = codes < 0
        counts = np.bincount(codes[~missing], minlength=len(uniques))
        key = codes.astype(np.int64).view(np.uint64)
        uniques = np.asarray(uniques, dtype=object)
    if len(counts) > keep:
        best = np.argpartition(-counts, keep - 1)[:keep]
        best = best[np.argsort(-counts[best], kind="stable")]
    else:
        best = np.argsort(-counts, kind="stable")
    labels = uniques[best]
    if isinstance(dtype, np.dtype) and dtype.kind in "mM":  # Timestamps / Timedeltas again
        labels = pd.Index(labels.view(dtype)).astype(object).to_numpy()
    top = pd.Series(counts[best], index=pd.Index(labels, dtype=object), dtype=np.int64)
    return _Tally(len(counts), top, int(counts.sum()), key, missing,
                  ordered if dtype.kind in "iuf" else None, as_text)


def _profile_column(series: pd.Series, *, is_target: bool) -> tuple[ColumnProfile, np.ndarray]:
    n = len(series)
    tally = _tally(series, keep=max(TOP_VALUES, BAR_VALUES, DISCRETE_MAX))
    # Reuse the exact distinct count (one hash or sort per column, not two); unhashable
    # values, counted as text here, are left to infer_kind's own rule.
    kind = infer_kind(series, n_distinct=None if tally.as_text else tally.distinct)
    missing = int(tally.missing.sum())
    column = ColumnProfile(
        name=str(series.name), kind=kind, dtype=str(series.dtype), count=n - missing,
        missing=missing, missing_share=missing / n if n else 0.0, distinct=tally.distinct,
        top_values=[{"value": _label(v), "count": int(c), "share": int(c) / n}
                    for v, c in tally.top.head(TOP_VALUES).items()],
        is_target=is_target,
    )
    if column.count == 0:
        column.chart = _bar_chart(tally, missing)
        return column, tally.key
    non_null = series[~tally.missing] if missing else series
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype)
    if numeric:
        column.stats = _numeric_stats(non_null, tally.ordered)
    if kind is ColumnKind.DATETIME:
        column.stats, column.chart = _datetime_stats(non_null)
    elif kind is ColumnKind.TEXT or (kind is ColumnKind.IDENTIFIER and not numeric):
        column.stats, column.chart = _text_stats(non_null, words=kind is ColumnKind.TEXT)
    elif numeric and kind is not ColumnKind.BOOLEAN and tally.distinct > DISCRETE_MAX:
        column.chart = _histogram(non_null.to_numpy(dtype=float), column.stats)
    elif numeric and kind is not ColumnKind.BOOLEAN:
        column.chart = _bar_chart(tally, missing, ordered=True)
    else:
        column.chart = _bar_chart(tally, missing)
    return column, tally.key


def _numeric_stats(non_null: pd.Series, ordered: np.ndarray | None = None) -> dict[str, Any]:
    """Mean, spread, quantiles (linear interpolation, as pandas and numpy) and counts."""
    if ordered is None:
        ordered = np.sort(non_null.to_numpy(dtype=float))
    values = ordered.astype(float, copy=False)
    finite = values[np.isfinite(values)]  # still sorted: -inf first, +inf last
    if len(finite) == 0:
        return {"infinite": len(values)}
    position = np.asarray(QUANTILES) * (len(finite) - 1)
    lo = np.floor(position).astype(np.int64)
    hi = np.minimum(lo + 1, len(finite) - 1)
    quantiles = finite[lo] + (finite[hi] - finite[lo]) * (position - lo)
    return {
        "mean": float(finite.mean()), "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
        "min": float(finite[0]), "max": float(finite[-1]),
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        "zeros": int(np.count_nonzero(finite == 0)),
        "negatives": int(np.searchsorted(finite, 0.0)),
        "infinite": int(len(values) - len(finite)),
    }


def _histogram(values: np.ndarray, stats: dict[str, Any]) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    lo, hi = stats["min"], stats["max"]
    q = stats["quantiles"]
    # A long tail squeezes everything into one bar; draw the central 98% and count the rest.
    # (A normal sample spans about twice its central 98%; three times means a real tail.)
    if hi - lo > 3 * (q["0.99"] - q["0.01"]) > 0:
        lo, hi = q["0.01"], q["0.99"]
    counts, edges = np.histogram(values, bins=HIST_BINS, range=(lo, hi))
    return {"type": "histogram", "edges": edges.tolist(), "counts": counts.tolist(),
            "below": int((values < lo).sum()), "above": int((values > hi).sum())}


def _bar_chart(tally: _Tally, missing: int, *, ordered: bool = False) -> dict[str, Any]:
    """Bars for the most frequent values (or, ``ordered``, every value in value order)."""
    shown = tally.top.sort_index() if ordered else tally.top.head(BAR_VALUES)
    return {"type": "bar", "labels": [_label(v) for v in shown.index],
            "counts": [int(c) for c in shown.to_numpy()],
            "other": tally.total - int(shown.sum()), "missing": missing}


def _datetime_stats(non_null: pd.Series) -> tuple[dict[str, Any], dict[str, Any]]:
    sampled = False
    if not pd.api.types.is_datetime64_any_dtype(non_null.dtype):
        # Dates held as text (frames not read by mlwright.load): parse a sample, they are slow.
        sampled = len(non_null) > TEXT_SAMPLE
        values = _sample(non_null, TEXT_SAMPLE)
        non_null = pd.to_datetime(values.astype(str), errors="coerce", utc=True,
                                  format="mixed").dropna()
        if len(non_null) == 0:
            return {}, {}
    tz = getattr(non_null.dtype, "tz", None)
    ints = non_null.astype("datetime64[ns, UTC]" if tz else "datetime64[ns]").to_numpy(
        dtype="datetime64[ns]").astype(np.int64)
    lo, hi = int(ints.min()), int(ints.max())
    counts, edges = np.histogram(ints, bins=TIMELINE_BINS, range=(lo, max(hi, lo + 1)))
    starts = pd.to_datetime(edges[:-1].astype(np.int64), utc=tz is not None)
    if tz is not None:
        starts = starts.tz_convert(tz)
    stats = {"min": non_null.min().isoformat(), "max": non_null.max().isoformat(),
             "span_days": (hi - lo) / 86_400e9, "sampled": sampled}
    chart = {"type": "timeline", "starts": [s.isoformat() for s in starts],
             "counts": counts.tolist(), "bin_days": (edges[1] - edges[0]) / 86_400e9}
    return stats, chart


def _text_stats(non_null: pd.Series, *, words: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    sampled = len(non_null) > TEXT_SAMPLE
    text = _sample(non_null, TEXT_SAMPLE).astype(str)
    lengths = text.str.len().to_numpy(dtype=float)
    stats: dict[str, Any] = {
        "mean_chars": float(lengths.mean()), "max_chars": int(lengths.max()),
        "min_chars": int(lengths.min()), "sampled": sampled,
    }
    if words:
        stats["mean_words"] = float(text.str.split().str.len().mean())
        tokens: Counter[str] = Counter()
        for value in text.head(2000 if sampled else TEXT_SAMPLE):
            tokens.update(w for w in _WORD.findall(value.lower()) if w not in _STOPWORDS)
        stats["top_words"] = [{"word": w, "count": c} for w, c in tokens.most_common(15)]
    n_bins = min(HIST_BINS, max(1, int(lengths.max() - lengths.min()) + 1))
    counts, edges = np.histogram(lengths, bins=n_bins)
    chart = {"type": "histogram", "edges": edges.tolist(), "counts": counts.tolist(),
             "below": 0, "above": 0, "x_title": "length (characters)"}
    return stats, chart


def _target_distribution(y: pd.Series, task: Task) -> tuple[dict[str, Any], float | None]:
    non_null = y.dropna()
    if task is Task.REGRESSION:
        stats = _numeric_stats(non_null)
        return {"type": "numeric", "stats": stats,
                "chart": _histogram(non_null.to_numpy(dtype=float), stats)}, None
    counts = non_null.astype(str).value_counts() if isinstance(
        non_null.dtype, pd.CategoricalDtype) else non_null.value_counts()
    counts = counts[counts > 0]
    classes = [{"value": _label(v), "count": int(c), "share": int(c) / len(non_null)}
               for v, c in counts.items()]
    return {"type": "classes", "classes": classes}, float(counts.iloc[0] / counts.iloc[-1])


def _duplicate_rows(keys: list[np.ndarray]) -> int:
    """Rows equal to an earlier row in every column, from the per-column value keys.

    The keys are folded into one 64-bit hash per row (splitmix64 after each column); with a
    million rows the chance of a single collision is about 3e-8, and it costs far less than
    hashing the frame again.
    """
    if not keys:
        return 0
    row = np.zeros(len(keys[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, key in enumerate(keys):
            row = _splitmix(row ^ (key + np.uint64(i + 1)))
    return int(len(row) - len(pd.unique(row)))


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))

def _sample(data: pd.Series, n: int, seed: int = 0) -> pd.Series:
    """At most ``n`` values at random (pandas' own sample permutes every row: slow on 1M)."""
    if len(data) <= n:
        return data
    rng = np.random.default_rng(seed)
    return data.iloc[np.sort(rng.choice(len(data), size=n, replace=False))]


def _memory_bytes(df: pd.DataFrame) -> int:
    """Memory of the frame as pandas' ``deep`` figure, text columns estimated from a sample.

    Measuring every Python string costs about 0.5 s per million values; the mean size of
    10,000 sampled values is within a percent or so for all but freak columns.
    """
    total = int(df.memory_usage(deep=False, index=False).sum())
    for name in df.columns:
        col = df[name]
        if col.dtype == object and len(col):
            sample = _sample(col, TEXT_SAMPLE)
            total += int(sample.memory_usage(deep=True, index=False)
                         - sample.memory_usage(deep=False, index=False)) * len(col) // len(sample)
    return total


def _label(value: Any) -> Any:
    """A JSON-ready form of one value: numbers and text as they are, the rest as text."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    return str(value)

