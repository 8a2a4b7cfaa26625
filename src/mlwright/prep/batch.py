"""Batches of rows seen column by column: the vectorised input side of compiled prediction.

:class:`FrameColumns` offers a DataFrame through the interface of
:class:`~mlwright.prep.fast.RecordColumns`, so that one :class:`~mlwright.prep.fast.CompiledTable`
builds the design matrix of a one-row request and of a million-row file. Values are read with
the pandas path's own column functions (``table._labels``, ``table._number_block``, the
datetime transformer's ``_utc_values``, ``text.as_text``), so they are the reference's values
by construction; what changes is the work per row: a lookup runs once per distinct value
(``pandas.factorize``) and text is tokenised by one regular-expression pass over the whole
column (:func:`word_counts`) instead of one Python call per document.

Exactness: :func:`word_counts` returns the count matrix ``CountVectorizer`` builds (same
tokens, n-grams, columns, sorted indices), so TF-IDF weighting and the text models run
scikit-learn's own code on it.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from mlwright.prep.table import _labels, _number_block
from mlwright.prep.text import TOKENS, as_text
from mlwright.prep.transformers import _utc_values

__all__ = ["FrameColumns", "batch_tokenizable", "word_counts"]

# Documents are joined with NUL, which the project's token pattern never matches (neither
# \w nor its punctuation) and which lowercasing leaves alone; as an alternative of the
# pattern it marks each document's end in the token stream.
_SEP = "\x00"
_FLAG = "(?u)"
_JOINED = re.compile(_FLAG + re.escape(_SEP) + "|" + TOKENS.removeprefix(_FLAG))


class FrameColumns:
    """A DataFrame's columns as the pandas path reads them, each view computed once.

    Not shared between threads: one instance per prediction call.
    """

    __slots__ = ("cache", "frame", "n")

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.n = len(frame)
        self.cache: dict[tuple[Any, ...], Any] = {}

    def _get(self, key: tuple[Any, ...], build: Any) -> Any:
        out = self.cache.get(key)
        if out is None:
            out = self.cache[key] = build()
        return out

    def labels(self, col: str) -> np.ndarray:
        return self._get(("labels", col), lambda: _labels(self.frame[col]))

    def factorized(self, col: str) -> tuple[np.ndarray, np.ndarray]:
        """(code per row, -1 for missing; the label of each code).

        Strings, integers and booleans are factorised as they are and only the distinct
        values turned into labels (``_labels`` is value by value, so each row's label is
        the same; two values may share a label, e.g. a trailing NUL stripped, which only
        repeats a lookup). Anything else (mixed objects, where 1 == 1.0 == True would
        merge values whose labels differ; floats, where -0.0 == 0.0) is labelled row by
        row first."""
        return self._get(("codes", col), lambda: _factorize_values(self.frame[col])
                         or pd.factorize(self.labels(col), use_na_sentinel=True))

    def lookup(self, col: str, fn: Any) -> np.ndarray:
        """``fn(label)`` for every row (None for missing), computed once per distinct label."""
        codes, uniques = self.factorized(col)
        values = np.array([*map(fn, uniques), fn(None)])
        return values[codes]  # code -1 takes the last entry: fn(None)

    def number_block(self, cols: list[str]) -> np.ndarray:
        """The numeric columns as one float matrix (the pandas path reads them as a block:
        one column it cannot convert sends all of them through the contract's parser)."""
        return self._get(("numbers", *cols), lambda: _number_block(self.frame, cols))

    def datetimes(self, col: str) -> np.ndarray:
        return self._get(("datetimes", col), lambda: _utc_values(self.frame[col]))

    def texts(self, col: str) -> list[str]:
        return self._get(("texts", col), lambda: as_text(self.frame[col]).tolist())


def _factorize_values(col: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes, labels of the codes) of a column of strings, integers or booleans (with
    missing values), factorised before labelling; None for any other column."""
    from pandas.api.types import infer_dtype

    kind = col.dtype.kind
    if kind not in "iubO" and not isinstance(col.dtype, pd.StringDtype):
        return None
    if (kind == "O" or isinstance(col.dtype, pd.StringDtype)) and infer_dtype(
            col, skipna=True) not in ("string", "empty"):
        return None
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    distinct = np.asarray(uniques, dtype=object)
    return codes, _labels(distinct) if len(distinct) else distinct


def batch_tokenizable(vec: Any) -> bool:
    """Whether :func:`word_counts` reproduces this fitted vectorizer's analyzer."""
    from sklearn.feature_extraction.text import CountVectorizer

    return (isinstance(vec, CountVectorizer) and vec.analyzer == "word"
            and vec.input == "content" and vec.preprocessor is None and vec.tokenizer is None
            and vec.stop_words is None and vec.strip_accents is None
            and vec.token_pattern == TOKENS and not vec.binary
            and hasattr(vec, "vocabulary_"))


def _ngrams(texts: list[str], lowercase: bool, ngram_range: tuple[int, int]
            ) -> list[tuple[np.ndarray, np.ndarray, list[str]]] | None:
    """Per n: (document of each n-gram, its code, the distinct n-grams by code), from one
    regex pass over the joined texts; None if a text holds NUL."""
    joined = _SEP.join(texts)
    if joined.count(_SEP) != max(len(texts) - 1, 0):
        return None
    if lowercase:
        joined = joined.lower()
    tokens = _JOINED.findall(joined)
    codes, distinct = pd.factorize(np.array(tokens, dtype=object))
    # Compared in Python: numpy would read "\x00" as "" (it strips trailing NULs).
    sep = np.fromiter(map(_SEP.__eq__, distinct), dtype=bool, count=len(distinct))[codes]
    doc = np.cumsum(sep)  # a separator belongs to the next document; it is never counted
    stops = np.concatenate([[0], doc])
    out = []
    lo, hi = ngram_range
    gram_codes, firsts = codes.astype(np.int64), np.arange(len(tokens))
    for n in range(1, hi + 1):
        starts = len(tokens) - n + 1
        if starts <= 0:
            break
        if n > 1:  # an n-gram is an (n-1)-gram and the next token: codes of code pairs
            gram_codes, uniq = pd.factorize(gram_codes[:starts] * len(distinct)
                                            + codes[n - 1:])
            firsts = np.full(len(uniq), len(tokens))
            np.minimum.at(firsts, gram_codes, np.arange(starts))
        if n < lo:
            continue
        valid = (stops[n:] - stops[:starts]) == 0  # no document end inside the window
        # The text of each distinct n-gram, built once (sklearn joins tokens with a space).
        names = [" ".join(tokens[i:i + n]) for i in firsts.tolist()] if n > 1 \
            else list(distinct)
        out.append((doc[:starts][valid], gram_codes[:starts][valid], names))
    return out


def word_counts(vec: Any, texts: list[str], cache: dict[tuple[Any, ...], Any] | None = None,
                key: Any = None) -> Any:
    """``vec``'s count matrix of ``texts`` (CSR, float counts, sorted indices), or None
    where the batch path cannot reproduce it (a text holding NUL).

    ``cache`` keeps the n-grams of ``key`` (a column), so two vectorizers with the same
    analyzer on one column tokenise it once.
    """
    import scipy.sparse as sp

    settings = (bool(vec.lowercase), tuple(vec.ngram_range))
    memo = ("ngrams", key, settings)
    found = cache.get(memo) if cache is not None and key is not None else None
    if found is None:
        found = _ngrams(texts, *settings)
        if found is None:
            return None
        if cache is not None and key is not None:
            cache[memo] = found
    vocab = vec.vocabulary_
    width = len(vocab)
    docs, ids = [], []
    for doc, codes, names in found:  # vocabulary look-ups per distinct n-gram
        known = np.fromiter(map(vocab.get, names, repeat(-1)), dtype=np.int64,
                            count=len(names))[codes]
        keep = known >= 0
        docs.append(doc[keep])
        ids.append(known[keep])
    all_docs = np.concatenate(docs) if docs else np.empty(0, np.int64)
    all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
    cells, counts = np.unique(all_docs.astype(np.int64) * width + all_ids,
                              return_counts=True)
    rows, columns = np.divmod(cells, width) if width else (cells, cells)
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
    return sp.csr_matrix((counts.astype(vec.dtype), columns, indptr),
                         shape=(len(texts), width))
