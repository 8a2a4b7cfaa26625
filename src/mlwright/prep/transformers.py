"""Column transformers that scikit-learn does not ship: date parts and text cleaning.

They follow the estimator contract (``__init__`` stores, ``fit`` learns) so that a whole
prep + model pipeline can be cloned, pickled, and exported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["AsString", "BooleanEncoder", "DatetimeFeatures", "TextCleaner", "Winsorizer"]

_SECONDS_PER_DAY = 86_400.0


def _as_frame(X: object) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def _to_datetime(col: pd.Series) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        # Requests and CSVs carry dates as text; unparseable values become missing.
        col = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
    if getattr(col.dtype, "tz", None) is not None:
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    return col


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
            col = _to_datetime(X[name])
            for part in parts:
                if part == "hour":
                    values = col.dt.hour + col.dt.minute / 60.0
                else:
                    values = getattr(col.dt, part)
                blocks.append(values.to_numpy(dtype=float, na_value=np.nan))
            seconds = col.astype("int64", copy=False).to_numpy(dtype=float) / 1e9
            seconds[col.isna().to_numpy()] = np.nan
            blocks.append((seconds - self.origin_[name]) / _SECONDS_PER_DAY)
        return np.column_stack(blocks) if blocks else np.empty((len(X), 0))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "parts_")
        return np.asarray(
            [f"{name}__{part}" for name, parts in self.parts_.items()
             for part in [*parts, "elapsed_days"]],
            dtype=object,
        )


class TextCleaner(TransformerMixin, BaseEstimator):
    """One text column as a 1-D array of strings (missing -> ""), for a TF-IDF vectorizer."""

    def fit(self, X: object, y: object = None) -> TextCleaner:
        self.n_features_in_ = 1
        return self

    def transform(self, X: object) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            X = X.iloc[:, 0]
        series = pd.Series(np.asarray(X, dtype=object).ravel())
        return series.where(series.notna(), "").astype(str).to_numpy()


class BooleanEncoder(TransformerMixin, BaseEstimator):
    """Two-valued columns (True/False, yes/no, 0/1, Y/N) as 0.0/1.0; anything else NaN."""

    _TRUE = frozenset({"true", "yes", "y", "t", "1", "1.0"})
    _FALSE = frozenset({"false", "no", "n", "f", "0", "0.0"})

    def fit(self, X: pd.DataFrame, y: object = None) -> BooleanEncoder:
        X = _as_frame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        # A two-valued text column with other labels ("Male"/"Female"): remember which is 1.
        self.positive_: dict[str, object] = {}
        for name in X.columns:
            values = sorted(map(str, pd.unique(X[name].dropna())))
            lowered = {v.strip().lower() for v in values}
            if not lowered <= (self._TRUE | self._FALSE) and values:
                self.positive_[str(name)] = values[-1]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "positive_")
        X = _as_frame(X)
        out = np.full(X.shape, np.nan)
        for j, name in enumerate(self.feature_names_in_):
            col = X[name]
            text = col.astype(str).str.strip().str.lower().to_numpy()
            if name in self.positive_:
                out[:, j] = np.where(col.astype(str).to_numpy() == str(self.positive_[name]),
                                     1.0, 0.0)
            else:
                out[:, j] = np.where(np.isin(text, list(self._TRUE)), 1.0,
                                     np.where(np.isin(text, list(self._FALSE)), 0.0, np.nan))
            out[col.isna().to_numpy(), j] = np.nan
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.feature_names_in_, dtype=object)


class AsString(TransformerMixin, BaseEstimator):
    """Labels as strings (missing kept as NaN), so 3 and "3" are the same category."""

    def fit(self, X: pd.DataFrame, y: object = None) -> AsString:
        X = _as_frame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = _as_frame(X)
        out = {}
        for name in X.columns:
            col = X[name]
            out[name] = col.astype(object).where(col.isna(), col.astype(str)).astype(object)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.feature_names_in_, dtype=object)


class Winsorizer(TransformerMixin, BaseEstimator):
    """Clip each numeric column to its training quantiles, so outliers cannot dominate a
    linear model (NaN passes through for the imputer that follows)."""

    def __init__(self, lower: float = 0.005, upper: float = 0.995) -> None:
        self.lower = lower
        self.upper = upper

    def fit(self, X: object, y: object = None) -> Winsorizer:
        values = np.asarray(X, dtype=float)
        self.n_features_in_ = values.shape[1]
        self.low_ = np.nanquantile(values, self.lower, axis=0)
        self.high_ = np.nanquantile(values, self.upper, axis=0)
        return self

    def transform(self, X: object) -> np.ndarray:
        check_is_fitted(self, "low_")
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(input_features if input_features is not None else
                          [f"x{i}" for i in range(self.n_features_in_)], dtype=object)
