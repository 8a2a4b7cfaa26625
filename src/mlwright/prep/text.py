"""Text columns for tree models: cross-fitted text scores instead of thousands of n-grams.

Boosted trees split poorly and slowly on a wide sparse TF-IDF matrix. Here a fast text-only
model (multinomial naive Bayes for classes, ridge for numbers) is fitted on word and
bigram TF-IDF, and its out-of-fold scores become a few dense features (one per class, or
one for regression), plus the length and word count of the text. Like target encoding,
the training rows get out-of-fold scores so that the trees never see a leaked answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from mlwright.data.kinds import Task

__all__ = ["TextScores", "make_tfidf"]

# Words plus the punctuation, hashtags and mentions that carry style ("!", "#tag", "@user").
TOKENS = r"(?u)[#@]?\w+|[!?\"“”]"


def make_tfidf(max_features: int, char_ngrams: bool = False) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=max_features,
                           token_pattern=TOKENS, sublinear_tf=True, dtype=np.float64)
    if not char_ngrams:
        return word
    # Character n-grams catch spelling and morphology, at about 3x the cost of words.
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), min_df=3,
                           max_features=max_features, sublinear_tf=True)
    return FeatureUnion([("word", word), ("char", char)])


def as_text(values: Any) -> np.ndarray:
    values = np.asarray(values, dtype=object)
    return np.where(pd.isna(values), "", values).astype(str)


class TextScores(TransformerMixin, BaseEstimator):
    """One text column -> [text-model scores..., n_chars, n_words].

    Args:
        task: "binary", "multiclass" or "regression".
        n_splits: folds for the out-of-fold scores of the training rows.
        max_features: vocabulary size of the TF-IDF.
    """

    def __init__(self, task: Task = Task.BINARY, n_splits: int = 5,
                 max_features: int = 20000, seed: int = 0) -> None:
        self.task = task
        self.n_splits = n_splits
        self.max_features = max_features
        self.seed = seed

    def _model(self) -> Any:
        from sklearn.linear_model import Ridge
        from sklearn.naive_bayes import MultinomialNB

        return Ridge(alpha=3.0) if self.task == "regression" else MultinomialNB(alpha=0.1)

    def _scores(self, model: Any, tfidf: Any) -> np.ndarray:
        if self.task == "regression":
            return np.asarray(model.predict(tfidf), dtype=float)[:, None]
        log_proba = model.predict_log_proba(tfidf)
        full = np.full((tfidf.shape[0], len(self.classes_)), -50.0)
        full[:, np.searchsorted(self.classes_, model.classes_)] = log_proba
        # Centre the log-probabilities per row: only their differences carry information.
        return full - full.mean(axis=1, keepdims=True)

    @staticmethod
    def _lengths(text: np.ndarray) -> np.ndarray:
        series = pd.Series(text)
        return np.column_stack([series.str.len().to_numpy(dtype=float),
                                series.str.split().str.len().to_numpy(dtype=float)])

    def fit(self, X: Any, y: Any) -> TextScores:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **_: Any) -> np.ndarray:
        from sklearn.model_selection import KFold, StratifiedKFold

        text = as_text(X)
        y = np.asarray(y)
        self.vectorizer_ = make_tfidf(self.max_features)
        # One counting pass: fit then transform counted every n-gram twice (0.6 s of a
        # 5 s budget on 15k tweets); the values agree to the last bit or one ulp.
        tfidf = self.vectorizer_.fit_transform(text)
        if self.task != "regression":
            self.classes_ = np.unique(y)
        splitter = (KFold(self.n_splits, shuffle=True, random_state=self.seed)
                    if self.task == "regression" else
                    StratifiedKFold(self.n_splits, shuffle=True, random_state=self.seed))
        width = 1 if self.task == "regression" else len(self.classes_)
        oof = np.zeros((len(text), width))
        try:
            folds = list(splitter.split(tfidf, y))
        except ValueError:  # a class with fewer rows than folds: plain k-fold
            folds = list(KFold(self.n_splits, shuffle=True,
                               random_state=self.seed).split(tfidf))
        for tr, va in folds:
            oof[va] = self._scores(self._model().fit(tfidf[tr], y[tr]), tfidf[va])
        self.model_ = self._model().fit(tfidf, y)
        return np.hstack([oof, self._lengths(text)])

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        text = as_text(X)
        return np.hstack([self._scores(self.model_, self.vectorizer_.transform(text)),
                          self._lengths(text)])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "model_")
        scores = (["score"] if self.task == "regression"
                  else [f"score_{c}" for c in self.classes_])
        return np.asarray([*scores, "n_chars", "n_words"], dtype=object)
