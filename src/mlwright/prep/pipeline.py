"""Build the preprocessing step of a model pipeline from the column kinds.

The same function serves training and serving (the contract records the kinds), so what a
model sees at predict time is prepared exactly as at training time. Two styles:

* ``tree``: numbers as they are (NaN kept), categories as ordinal codes with -1 for missing
  and unseen values (LightGBM's native categorical support reads them; the categorical block
  comes first so its indices are known before fitting), dates as parts, text as cross-fitted
  text-model scores plus lengths (see mlwright.prep.text).
* ``linear``: imputation with missing indicators, optional winsorizing, scaling; one-hot for
  low cardinality, cross-fitted target encoding for high cardinality; word (and optionally
  character) TF-IDF for text.

Unseen categories and missing values at predict time never raise.
"""

from __future__ import annotations

from mlwright.data.kinds import Task
from mlwright.prep.plan import PrepPlan
from mlwright.prep.table import TablePrep

__all__ = ["build_preprocessor"]


def build_preprocessor(plan: PrepPlan, style: str = "tree", *, task: Task = Task.BINARY,
                       winsorize: bool = True, char_ngrams: bool = False,
                       text_max_features: int | None = None) -> TablePrep:
    """The unfitted preprocessing step for ``plan`` in the given ``style``."""
    return TablePrep(plan, style, task, winsorize=winsorize, char_ngrams=char_ngrams,
                     text_max_features=text_max_features)
