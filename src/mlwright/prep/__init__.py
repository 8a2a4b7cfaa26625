"""prep: one scikit-learn preprocessing step, built from the contract's column kinds."""

from mlwright.prep.pipeline import PrepPlan, build_preprocessor, plan_columns
from mlwright.prep.transformers import AsString, BooleanEncoder, DatetimeFeatures, TextCleaner

__all__ = ["AsString", "BooleanEncoder", "DatetimeFeatures", "PrepPlan", "TextCleaner",
           "build_preprocessor", "plan_columns"]
