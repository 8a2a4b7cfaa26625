"""Date parts: a column transformer that scikit-learn does not ship.

They follow the estimator contract (``__init__`` stores, ``fit`` learns) so that a whole
prep + model pipeline can be cloned, pickled, and exported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from mlwright.data.contract.rules import parse_datetimes

__all__ = ["DatetimeFeatures"]

_SECONDS_PER_DAY = 86_400.0


def _as_frame(X: object) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def _to_datetime(col: pd.Series) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        # Requests and CSVs carry dates as text: read by the contract's date rule (ISO 8601,
        # naive = UTC); what is not a date becomes missing.
        col = parse_datetimes(col)
    if getattr(col.dtype, "tz", None) is not None:
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    return col


def _utc_values(col: pd.Series) -> np.ndarray:
    """Naive UTC datetime64[ns] values; zone-aware columns convert without pandas' .dt."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return col.to_numpy(dtype="datetime64[ns]")  # aware values come out in UTC
    return _to_datetime(col).to_numpy(dtype="datetime64[ns]")


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Expand datetime columns into year, month, day, day of week, hour and elapsed days.

    Parts that never vary in the training data (e.g. the hour of a date-only column) are
    left out. Missing or unparseable dates give NaN, which imputers or trees handle.
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> DatetimeFeatures:
        X = _as_frame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.parts_: dict[str, list[str]] = {}
        self.origin_: dict[str, float] = {}
        for name in X.columns:
            col = _to_datetime(X[name])
            parts = ["year", "month", "day", "dayofweek", "dayofyear"]
            if (col.dt.hour.fillna(0) != 0).any() or (col.dt.minute.fillna(0) != 0).any():
                parts.append("hour")
            self.parts_[str(name)] = parts
            first = col.min()
            self.origin_[str(name)] = 0.0 if pd.isna(first) else first.timestamp()
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "parts_")
        X = _as_frame(X)
        blocks = []
        for name, parts in self.parts_.items():
            # numpy calendar arithmetic: a fraction of the cost of pandas' .dt accessors.
            values = _utc_values(X[name])
            missing = np.isnat(values)
            days = values.astype("datetime64[D]")
            months = values.astype("datetime64[M]")
            years = values.astype("datetime64[Y]")
            computed = {
                "year": years.astype(np.int64) + 1970.0,
                "month": months.astype(np.int64) % 12 + 1.0,
                "day": (days - months).astype(np.int64) + 1.0,
                "dayofweek": (days.astype(np.int64) + 3) % 7 + 0.0,  # 1970-01-01: Thursday
                "dayofyear": (days - years).astype(np.int64) + 1.0,
                "hour": (values - days).astype("timedelta64[s]").astype(np.int64) / 3600.0,
            }
            seconds = values.astype("datetime64[s]").astype(np.int64).astype(float)
            for part in parts:
                blocks.append(np.where(missing, np.nan, computed[part]))
            blocks.append(np.where(missing, np.nan,
                                   (seconds - self.origin_[name]) / _SECONDS_PER_DAY))
        return np.column_stack(blocks) if blocks else np.empty((len(X), 0))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "parts_")
        return np.asarray(
            [f"{name}__{part}" for name, parts in self.parts_.items()
             for part in [*parts, "elapsed_days"]],
            dtype=object,
        )
