"""The built-in model zoo; importing this package registers every family."""

from mlwright.search.families.boosting import (
    CatBoostFamily,
    HistGradientBoostingFamily,
    LightGBMFamily,
    XGBoostFamily,
)
from mlwright.search.families.forests import ExtraTreesFamily, RandomForestFamily
from mlwright.search.families.linear import LinearFamily
from mlwright.search.families.neighbors import KNNFamily
from mlwright.search.families.neural import MLPFamily

__all__ = ["CatBoostFamily", "ExtraTreesFamily", "HistGradientBoostingFamily", "KNNFamily",
           "LightGBMFamily", "LinearFamily", "MLPFamily", "RandomForestFamily", "XGBoostFamily"]
