"""prep: one scikit-learn preprocessing step, built from the contract's column kinds."""

from mlwright.prep.pipeline import build_preprocessor
from mlwright.prep.plan import PrepPlan, plan_columns
from mlwright.prep.table import TablePrep
from mlwright.prep.transformers import DatetimeFeatures

__all__ = ["DatetimeFeatures", "PrepPlan", "TablePrep", "build_preprocessor", "plan_columns"]
