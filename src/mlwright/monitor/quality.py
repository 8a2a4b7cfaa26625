"""Data quality of a window (contract violations, missing rates, new categories) and the
service's health (latency percentiles, error rates) from the prediction log."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.data.kinds import ColumnKind

if TYPE_CHECKING:
    from mlwright.monitor._base import ColumnWindow
    from mlwright.monitor.log import LogWindow
    from mlwright.monitor.reference import Reference

__all__ = ["DataQuality", "ServiceHealth", "data_quality", "service_health"]

#: A column is flagged when its missing rate rises this much above training's (absolute).
MISSING_INCREASE = 0.05


@dataclass
class DataQuality:
    n_records: int
    n_rejected: int                       # records answered 422 (contract errors)
    violations: list[dict[str, Any]]      # {column, rule, severity, count}, most common first
    missing: list[dict[str, Any]]         # {column, reference, current, flagged}
    new_categories: list[dict[str, Any]]  # {column, values: [{value, count}], share}
    flagged: list[str] = field(default_factory=list)  # columns with a quality problem

    @property
    def rejected_rate(self) -> float:
        return self.n_rejected / self.n_records if self.n_records else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"n_records": self.n_records, "n_rejected": self.n_rejected,
                "rejected_rate": self.rejected_rate, "violations": self.violations,
                "missing": self.missing, "new_categories": self.new_categories,
                "flagged": self.flagged}


def _violation_counts(texts: list[str]) -> list[dict[str, Any]]:
    import orjson

    counts: Counter[tuple[str, str, str]] = Counter()
    for text in texts:
        if text is None or text in ("[]", "null", ""):
            continue
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError:
            counts[("", "unreadable", "error")] += 1
            continue
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict):
                column = item.get("column", item.get("field", ""))  # server: "field"
                counts[(str(column), str(item.get("rule", "")),
                        str(item.get("severity", "")))] += 1
            else:
                counts[("", str(item), "")] += 1
    return [{"column": c, "rule": r, "severity": s, "count": n}
            for (c, r, s), n in counts.most_common()]


def data_quality(window: LogWindow, current: dict[str, ColumnWindow],
                 reference: Reference) -> DataQuality:
    missing: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    flagged: list[str] = []
    for name, ref in reference.columns.items():
        cur = current.get(name)
        if cur is None:
            continue
        total = cur.n + cur.n_missing
        rate = cur.n_missing / total if total else 0.0
        bad = rate > ref.missing_rate + MISSING_INCREASE
        missing.append({"column": name, "reference": ref.missing_rate, "current": rate,
                        "flagged": bad})
        if bad:
            flagged.append(name)
        # A numeric column with few values is compared as categories for drift, but a new
        # number is not an unseen category: the contract's range checks cover it.
        numeric = reference.contract.column(name).kind is ColumnKind.NUMERIC
        if ref.type == "categorical" and ref.closed and cur.counts and not numeric:
            unseen = {k: n for k, n in cur.counts.items() if k not in ref.counts}
            if unseen:
                top = sorted(unseen.items(), key=lambda kv: -kv[1])[:10]
                new.append({"column": name, "share": sum(unseen.values()) / max(cur.n, 1),
                            "values": [{"value": k, "count": n} for k, n in top],
                            "n_values": len(unseen)})
                if name not in flagged:
                    flagged.append(name)
    missing.sort(key=lambda m: (not m["flagged"], -(m["current"] - m["reference"])))
    return DataQuality(window.n_records, window.status_counts.get("422", 0),
                       _violation_counts(window.violations), missing, new, flagged)


@dataclass
class ServiceHealth:
    n_records: int
    n_requests: int
    error_rate: float          # records answered with a status >= 400
    server_error_rate: float   # records answered with a status >= 500
    status_counts: dict[str, int]
    latency_ms: dict[str, float | None]  # p50, p90, p95, p99, mean (per request)
    records_per_second: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def service_health(window: LogWindow) -> ServiceHealth:
    """Counts are exact; latency percentiles are per request (every request has a record
    0, and its records share its latency), over the sampled requests of large windows."""
    n = window.n_records
    lat = window.latency_ms[np.isfinite(window.latency_ms)]
    q = np.percentile(lat, [50, 90, 95, 99]) if lat.size else [None] * 4
    latency = {"p50": q[0], "p90": q[1], "p95": q[2], "p99": q[3],
               "mean": float(lat.mean()) if lat.size else None}
    latency = {k: None if v is None else float(v) for k, v in latency.items()}
    codes = {int(k): v for k, v in window.status_counts.items()}
    errors = sum(v for k, v in codes.items() if k >= 400)
    server = sum(v for k, v in codes.items() if k >= 500)
    span = (window.end - window.start) \
        if n and window.end is not None and window.start is not None else 0.0
    return ServiceHealth(
        n, window.n_requests, errors / n if n else 0.0, server / n if n else 0.0,
        {str(k): v for k, v in sorted(codes.items())}, latency,
        n / span if span and span > 0 else None)
