"""Build the one preprocessing step of a model pipeline from the column kinds.

The same function serves training and serving (the contract records the kinds), so what a
model sees at predict time is prepared exactly as at training time. Two styles:

* ``tree``: numbers as they are (NaN kept), categories as ordinal codes with -1 for missing
  and unseen values (LightGBM's native categorical support reads them; the categorical block
  comes first so its indices are known before fitting), dates as parts, text as word TF-IDF.
* ``linear``: imputation with missing indicators, optional winsorizing, scaling; one-hot for
  low cardinality, cross-fitted target encoding for high cardinality; word and character
  TF-IDF for text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import (
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
    TargetEncoder,
)

from mlwright.data.kinds import ColumnKind
from mlwright.prep.transformers import (
    AsString,
    BooleanEncoder,
    DatetimeFeatures,
    TextCleaner,
    Winsorizer,
)

__all__ = ["PrepPlan", "build_preprocessor", "plan_columns"]

_DROPPED = {ColumnKind.IDENTIFIER, ColumnKind.CONSTANT}


@dataclass(frozen=True)
class PrepPlan:
    """Which columns play which part; known before anything is fitted."""

    numeric: list[str] = field(default_factory=list)
    boolean: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    high_cardinality: list[str] = field(default_factory=list)
    datetime: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def n_ordinal(self) -> int:
        """Width of the leading ordinal block of the ``tree`` style."""
        return len(self.categorical) + len(self.high_cardinality)

    @property
    def has_text(self) -> bool:
        return bool(self.text)

    @property
    def used(self) -> list[str]:
        return [*self.numeric, *self.boolean, *self.categorical, *self.high_cardinality,
                *self.datetime, *self.text]


def plan_columns(kinds: Mapping[str, ColumnKind | str], target: str | None = None) -> PrepPlan:
    """Sort feature columns by kind; identifiers and constants are dropped."""
    parts: dict[str, list[str]] = {k: [] for k in
                                   ("numeric", "boolean", "categorical", "high_cardinality",
                                    "datetime", "text", "dropped")}
    for name, kind in kinds.items():
        if name == target:
            continue
        kind = ColumnKind(kind)
        key = "dropped" if kind in _DROPPED else kind.value
        parts[key].append(name)
    return PrepPlan(**parts)


_TARGET_TYPE = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}


def _ordinal() -> Pipeline:
    return make_pipeline(
        AsString(),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                       encoded_missing_value=-1, dtype=np.float64),
    )


# Words, plus the punctuation, hashtags and mentions that carry style ("!", "#tag", "@user").
_TOKENS = r"(?u)[#@]?\w+|[!?\"“”]"


def _text_tfidf(max_features: int, char_ngrams: bool) -> Pipeline:
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features,
                           token_pattern=_TOKENS, sublinear_tf=True)
    if not char_ngrams:
        return make_pipeline(TextCleaner(), word)
    # Character n-grams catch misspellings and morphology, at about 3x the cost of words.
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), min_df=3,
                           max_features=max_features, sublinear_tf=True)
    return make_pipeline(TextCleaner(), FeatureUnion([("word", word), ("char", char)]))


def build_preprocessor(plan: PrepPlan, style: str = "tree", *, task: str = "binary",
                       winsorize: bool = False, text_max_features: int | None = None,
                       char_ngrams: bool = False) -> ColumnTransformer:
    """The unfitted ColumnTransformer for ``plan`` in the given ``style``.

    Unseen categories and missing values at predict time never raise: ordinal codes use -1,
    one-hot ignores them, imputers fill numbers, TF-IDF ignores unknown words.

    Args:
        task: "binary", "multiclass" or "regression" (the target encoder's target type).
        winsorize: clip numbers to their 0.5%-99.5% training quantiles (``linear`` only).
        char_ngrams: add character n-grams to word n-grams for text (``linear`` only).
    """
    if style not in ("tree", "linear"):
        raise ValueError(f"style must be 'tree' or 'linear', got {style!r}")
    steps: list[tuple[str, object, object]] = []
    if style == "tree":
        # Ordinal block first: LightGBM's categorical_feature = range(plan.n_ordinal).
        if plan.n_ordinal:
            steps.append(("cat", _ordinal(), plan.categorical + plan.high_cardinality))
        if plan.numeric:
            steps.append(("num", "passthrough", plan.numeric))
        if plan.boolean:
            steps.append(("bool", BooleanEncoder(), plan.boolean))
        if plan.datetime:
            steps.append(("date", DatetimeFeatures(), plan.datetime))
        for col in plan.text:
            steps.append((f"text_{col}", _text_tfidf(text_max_features or 5000, False), col))
    else:
        numeric_steps: list[object] = [SimpleImputer(strategy="median", add_indicator=True)]
        if winsorize:
            numeric_steps.insert(0, Winsorizer())
        numeric_steps.append(StandardScaler())
        if plan.numeric:
            steps.append(("num", make_pipeline(*numeric_steps), plan.numeric))
        if plan.boolean:
            steps.append(("bool", make_pipeline(
                BooleanEncoder(), SimpleImputer(strategy="most_frequent")), plan.boolean))
        if plan.categorical:
            steps.append(("onehot", make_pipeline(
                AsString(), SimpleImputer(strategy="constant", fill_value="__missing__"),
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                              sparse_output=True)), plan.categorical))
        if plan.high_cardinality:
            steps.append(("target_enc", make_pipeline(
                AsString(), SimpleImputer(strategy="constant", fill_value="__missing__"),
                TargetEncoder(target_type=_TARGET_TYPE[task],
                              cv=KFold(5, shuffle=True, random_state=0)),
                StandardScaler()), plan.high_cardinality))
        if plan.datetime:
            steps.append(("date", make_pipeline(
                DatetimeFeatures(), SimpleImputer(strategy="median"), StandardScaler()),
                plan.datetime))
        for col in plan.text:
            steps.append((f"text_{col}", _text_tfidf(text_max_features or 50000, char_ngrams),
                          col))
    if not steps:
        raise ValueError("no usable feature columns: every column is an identifier or constant")
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.3,
                             verbose_feature_names_out=True)
