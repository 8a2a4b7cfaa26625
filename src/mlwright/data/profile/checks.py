"""What to watch out for: per-column warnings (identifiers, constants, heavy missingness,
datetimes, free text, personal data) and target leakage."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from mlwright.data.kinds import ColumnKind, is_text_dtype
from mlwright.data.leakage import LeakageScore
from mlwright.data.pii import find_pii
from mlwright.data.profile.columns import _sample, _tally
from mlwright.data.profile.result import ColumnProfile, ProfileWarning, Severity

HEAVY_MISSING = 0.5
PII_SAMPLE = 2000
# A column is reported when at least this share of its sampled values hold personal data:
# a column *of* e-mails or phones, not a tweet that once quotes a hotline.
PII_MIN_SHARE = 0.01


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

