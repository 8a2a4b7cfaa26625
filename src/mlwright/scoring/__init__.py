"""Scoring, a foundation every stage uses: the one metric table (names, aliases, direction,
report labels, the default per task, point functions and the search's loss view), interval
tools (bootstrap resamples as indices or count weights, paired bootstrap, DeLong) and the
live score of logged answers. It imports numpy, scipy, scikit-learn, ``mlwright.exceptions``
and ``mlwright._json`` only (tasks are their names; ``Task`` members work too)."""

from mlwright.scoring._live import live_arrays, live_score
from mlwright.scoring._table import (
    DEFAULT_METRIC,
    METRICS,
    Metric,
    MetricInfo,
    canonical_name,
    get_metric,
    greater_is_better,
    metric_info,
    metric_label,
    row_terms,
    score_or_nan,
)

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "Metric",
    "MetricInfo",
    "canonical_name",
    "get_metric",
    "greater_is_better",
    "live_arrays",
    "live_score",
    "metric_info",
    "metric_label",
    "row_terms",
    "score_or_nan",
]
