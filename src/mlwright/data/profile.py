"""Profile a table: what each column holds, facts about the table, and what to watch out for.

``profile(df, target="churn")`` returns a :class:`Profile`: per column its kind (from
:func:`mlwright.data.kinds.infer_kind`, the one source of kinds), dtype, missingness, distinct
count, quantiles, top values and chart data; table facts (rows, duplicates, memory, the
target's distribution and task); and :class:`ProfileWarning` objects for target leakage,
identifiers, constants, heavy missingness, datetimes, free text and personal data.

Exact counts (missing, distinct, quantiles, top values) are cheap and use every row. The
expensive checks run on fixed-seed samples: leakage on 10,000 rows, personal data on 2,000
values per column, text statistics on 10,000 values.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._html import fmt_num
from mlwright._logging import get_logger
from mlwright.data.kinds import ColumnKind, Task, infer_kind, is_text_dtype
from mlwright.data.leakage import SAMPLE_ROWS as LEAKAGE_SAMPLE
from mlwright.data.leakage import LeakageScore, score_features
from mlwright.data.pii import find_pii
from mlwright.data.target import check_target
from mlwright.exceptions import ConfigError, EmptyDataError

__all__ = ["ColumnProfile", "Profile", "ProfileWarning", "Severity", "profile"]

log = get_logger(__name__)

TOP_VALUES = 10
BAR_VALUES = 20
HIST_BINS = 40
TIMELINE_BINS = 60
# A numeric column with at most this many values is drawn as bars, one per value.
DISCRETE_MAX = 25
HEAVY_MISSING = 0.5
PII_SAMPLE = 2000
# A column is reported when at least this share of its sampled values hold personal data:
# a column *of* e-mails or phones, not a tweet that once quotes a hotline.
PII_MIN_SHARE = 0.01
TEXT_SAMPLE = 10_000
IMBALANCE_RATIO = 10.0
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


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass
class ProfileWarning:
    """Something about the data to act on before training."""

    code: str  # target_leakage, identifier, constant, high_missing, datetime, free_text, pii...
    column: str | None
    message: str
    severity: Severity
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)


@dataclass
class ColumnProfile:
    """Statistics and chart data for one column."""

    name: str
    kind: ColumnKind
    dtype: str
    count: int  # non-missing values
    missing: int
    missing_share: float
    distinct: int  # distinct non-missing values
    top_values: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    chart: dict[str, Any] = field(default_factory=dict)
    is_target: bool = False

    def __post_init__(self) -> None:
        self.kind = ColumnKind(self.kind)

    @property
    def summary(self) -> str:
        """One short line describing the values (for the CLI and the overview table)."""
        s = self.stats
        if self.kind is ColumnKind.NUMERIC and "mean" in s:
            return (f"mean {fmt_num(s['mean'])}, median {fmt_num(s['quantiles']['0.5'])}, "
                    f"range {fmt_num(s['min'])} … {fmt_num(s['max'])}")
        if self.kind is ColumnKind.DATETIME and s.get("min"):
            return f"{s['min'][:10]} … {s['max'][:10]}"
        if self.kind is ColumnKind.IDENTIFIER:
            return f"{self.distinct:,} distinct values ({self.distinct / self.count:.0%} unique)"
        if self.kind is ColumnKind.TEXT and "mean_words" in s:
            return f"{s['mean_words']:.0f} words, {s['mean_chars']:.0f} characters on average"
        if self.top_values:
            shown = ", ".join(f"{v['value']} ({v['share']:.0%})" for v in self.top_values[:3])
            return shown + (", …" if self.distinct > 3 else "")
        return "all values missing" if self.count == 0 else ""


@dataclass
class Profile:
    """The profile of a table. ``to_dict``/``to_json`` round-trip; ``to_html`` draws it."""

    n_rows: int
    n_columns: int
    duplicate_rows: int
    memory_bytes: int
    missing_cells: int
    columns: list[ColumnProfile]
    warnings: list[ProfileWarning]
    target: str | None = None
    task: Task | None = None
    target_distribution: dict[str, Any] | None = None
    imbalance_ratio: float | None = None
    leakage: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task = Task(self.task) if self.task is not None else None

    def __getitem__(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        from mlwright.exceptions import ColumnNotFoundError

        raise ColumnNotFoundError(name, [c.name for c in self.columns])

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        return {c.name: c.kind for c in self.columns}

    def warnings_for(self, code: str | None = None, column: str | None = None
                     ) -> list[ProfileWarning]:
        """The warnings with this code and/or about this column."""
        return [w for w in self.warnings
                if (code is None or w.code == code) and (column is None or w.column == column)]

    def flagged(self, code: str) -> list[str]:
        """The columns carrying a warning with this code."""
        return [w.column for w in self.warnings if w.code == code and w.column is not None]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (no NaN, no numpy or pandas values)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        data = dict(data)
        data["columns"] = [ColumnProfile(**c) for c in data["columns"]]
        data["warnings"] = [ProfileWarning(**w) for w in data["warnings"]]
        return cls(**data)

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """The profile as JSON text, also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def read_json(cls, path: str | Path) -> Profile:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write a self-contained HTML page (Plotly inlined, opens with no network)."""
        from mlwright.data._profile_html import render_profile

        return render_profile(self, Path(path), title=title)


def profile(df: pd.DataFrame, target: str | None = None, *, task: str | Task | None = None,
            seed: int = 0) -> Profile:
    """Profile ``df``; with ``target``, also the task, the target's distribution and leakage.

    Raises:
        ColumnNotFoundError: ``target`` is not a column of ``df``.
        TargetError: the target is all missing, has a single value, or does not fit ``task``.
        EmptyDataError: ``df`` has no rows or no columns.
    """
    started = time.perf_counter()
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"profile() expects a pandas DataFrame, got {type(df).__name__}; "
                          f"read files with mlwright.load(path) first.")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise EmptyDataError(f"Cannot profile an empty table ({df.shape[0]} rows, "
                             f"{df.shape[1]} columns): expected at least one row and column.")
    if not df.columns.is_unique:
        dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ConfigError(f"Column names must be unique to profile a table; repeated: {dupes}. "
                          f"Rename them first.")
    df = df.rename(columns=str) if not all(isinstance(c, str) for c in df.columns) else df
    resolved_task = check_target(df, target, task) if target is not None else None

    profiled = [_profile_column(df[name], is_target=name == target) for name in df.columns]
    columns = [column for column, _ in profiled]
    kinds = {c.name: c.kind for c in columns}
    warnings: list[ProfileWarning] = []
    for column in columns:
        warnings.extend(_column_warnings(column, df[column.name], n_rows=len(df), seed=seed))

    leakage: list[LeakageScore] = []
    distribution = imbalance = None
    if target is not None and resolved_task is not None:
        distribution, imbalance = _target_distribution(df[target], resolved_task)
        leakage = score_features(df, target, resolved_task, kinds, seed=seed)
        warnings.extend(_leakage_warning(s, target) for s in leakage if s.verdict is not None)
        if imbalance is not None and imbalance >= IMBALANCE_RATIO:
            warnings.append(ProfileWarning(
                "class_imbalance", target,
                f"The target {target!r} is imbalanced: the largest class has {imbalance:.0f} times "
                f"the rows of the smallest. Accuracy will mislead; judge models by ROC AUC, log "
                f"loss or per-class recall.", Severity.INFO, {"ratio": imbalance}))
    duplicates = _duplicate_rows([key for _, key in profiled])
    if duplicates:
        warnings.append(ProfileWarning(
            "duplicate_rows", None,
            f"{duplicates:,} rows ({duplicates / len(df):.1%}) repeat an earlier row exactly. "
            f"Duplicates can straddle the train/test split and flatter the scores.",
            Severity.INFO, {"rows": duplicates}))
    warnings.sort(key=lambda w: _SEVERITY_ORDER[w.severity])

    missing_cells = int(sum(c.missing for c in columns))
    elapsed = time.perf_counter() - started
    log.info("profiled %d rows x %d columns in %.2fs", len(df), df.shape[1], elapsed)
    from mlwright import __version__

    return Profile(
        n_rows=len(df), n_columns=df.shape[1], duplicate_rows=duplicates,
        memory_bytes=_memory_bytes(df),
        missing_cells=missing_cells, columns=columns, warnings=warnings, target=target,
        task=resolved_task, target_distribution=distribution, imbalance_ratio=imbalance,
        leakage=[_leakage_row(s) for s in leakage],
        meta={"mlwright_version": __version__, "seed": seed,
              "created": datetime.now(UTC).isoformat(timespec="seconds"),
              "elapsed_s": round(elapsed, 3),
              "samples": {"leakage_rows": min(LEAKAGE_SAMPLE, len(df)),
                          "pii_values": PII_SAMPLE, "text_values": TEXT_SAMPLE}},
    )


# ---------------------------------------------------------------------------- columns

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


# ---------------------------------------------------------------------------- warnings

def _column_warnings(column: ColumnProfile, series: pd.Series, *, n_rows: int, seed: int
                     ) -> list[ProfileWarning]:
    name, kind = column.name, column.kind
    out: list[ProfileWarning] = []
    role = "target" if column.is_target else "feature"
    if kind is ColumnKind.CONSTANT and not column.is_target:
        what = ("is missing in every row" if column.count == 0 else
                f"holds a single value ({column.top_values[0]['value']!r})")
        out.append(ProfileWarning(
            "constant", name, f"{name!r} {what}: it carries no information and is dropped "
            f"from training.", Severity.WARNING))
    if kind is ColumnKind.IDENTIFIER and not column.is_target:
        out.append(ProfileWarning(
            "identifier", name,
            f"{name!r} looks like an identifier: {column.distinct:,} distinct values in "
            f"{column.count:,} rows. An id cannot generalise to new rows (and may encode row "
            f"order); it is dropped from training. Keep it only to join or trace rows.",
            Severity.WARNING, {"distinct": column.distinct}))
    if column.missing_share > HEAVY_MISSING and column.count > 0:
        out.append(ProfileWarning(
            "high_missing", name,
            f"{name!r} is missing in {column.missing_share:.0%} of rows ({column.missing:,} of "
            f"{n_rows:,}). Check how it was collected; whether it is missing may itself be the "
            f"signal.", Severity.WARNING, {"missing_share": column.missing_share}))
    if kind is ColumnKind.DATETIME:
        s = column.stats
        span = f" from {s['min'][:10]} to {s['max'][:10]}" if s.get("min") else ""
        out.append(ProfileWarning(
            "datetime", name,
            f"{name!r} is a datetime{span}. It is turned into calendar parts for training; if "
            f"rows are ordered in time, evaluate on a later period than you train on.",
            Severity.INFO, {"min": s.get("min"), "max": s.get("max")}))
    if kind is ColumnKind.TEXT:
        out.append(ProfileWarning(
            "free_text", name,
            f"{name!r} is free text (about {column.stats.get('mean_words', 0):.0f} words per "
            f"value). It is vectorised with TF-IDF; check it holds no personal data and no "
            f"wording written after the outcome.", Severity.INFO,
            {"mean_words": column.stats.get("mean_words")}))
    if is_text_dtype(series) and column.count > 0:
        out.extend(_pii_warnings(name, series, role, seed,
                                 sparse=column.missing_share > HEAVY_MISSING))
    return out


_PII_NAMES = {"email": "e-mail addresses", "phone": "phone numbers",
              "card_number": "payment card numbers (Luhn-valid)"}


def _pii_warnings(name: str, series: pd.Series, role: str, seed: int, *, sparse: bool
                  ) -> list[ProfileWarning]:
    # Sample rows first and drop missing values in the sample (dropna on a million strings
    # costs more than the scan), unless most values are missing and the sample would be thin.
    sample = _sample(series.dropna() if sparse else series, PII_SAMPLE, seed).dropna()
    if len(sample) == 0:
        return []
    # Scan each distinct value once and weight it by its count (categoricals repeat a lot).
    counts = _tally(sample, keep=len(sample)).top
    found: dict[str, int] = {}
    for value, count in counts.items():
        for pii_kind in find_pii(value) if isinstance(value, str) else ():
            found[pii_kind] = found.get(pii_kind, 0) + int(count)
    scanned = len(sample)
    out = []
    for pii_kind, hits in sorted(found.items()):
        share = hits / scanned
        if share < PII_MIN_SHARE:
            continue
        out.append(ProfileWarning(
            "pii", name,
            f"{name!r} ({role}) holds {_PII_NAMES[pii_kind]}: {hits:,} of {scanned:,} sampled "
            f"values ({share:.0%}). Personal data should not train a model; drop, hash or "
            f"mask it.", Severity.CRITICAL if pii_kind == "card_number" else Severity.WARNING,
            {"pii": pii_kind, "matches": hits, "sampled": scanned, "share": share}))
    return out


def _leakage_warning(score: LeakageScore, target: str) -> ProfileWarning:
    metric = {"roc_auc": "ROC AUC", "roc_auc_ovr": "ROC AUC (one-vs-rest)", "r2": "R²"}
    details = _leakage_row(score)
    if score.verdict == "near_perfect":
        return ProfileWarning(
            "target_leakage", score.column,
            f"Likely target leakage: {score.column!r} alone predicts {target!r} almost "
            f"perfectly ({metric[score.metric]} {score.score:.3f} out of fold). Check it is "
            f"known before the outcome; if it is derived from the target, drop it.",
            Severity.CRITICAL, details)
    where = score.segment_condition or "for some values"
    label = f"{target}={score.segment_class!r}"
    return ProfileWarning(
        "target_leakage", score.column,
        f"Likely target leakage: {score.column} {where} nearly implies {label}: "
        f"{score.segment_precision:.0%} of those rows have it against {score.class_share:.0%} "
        f"overall, and they hold {score.segment_recall:.0%} of all {label} rows (out of fold, "
        f"{score.rows:,} sampled rows). A field recorded because of the outcome looks like "
        f"this; drop it unless it is known before the prediction is made.",
        Severity.CRITICAL, details)


def _leakage_row(score: LeakageScore) -> dict[str, Any]:
    row = asdict(score)
    row["purity"] = score.purity
    row["verdict"] = score.verdict
    return row


# ---------------------------------------------------------------------------- helpers

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


def _plain(value: Any) -> Any:
    """Recursively turn dataclass output into JSON-native values (NaN becomes None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return str(value.value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value
