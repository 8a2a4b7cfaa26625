"""The one-pass tokeniser counts exactly what scikit-learn's vectorizer counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlwright.prep.batch import FrameColumns, batch_tokenizable, word_counts
from mlwright.prep.text import as_text, make_tfidf

ODD = ["", "ΣΑΣ ΟΔΟΣ σοφός", "東京 café — naïve 🎉", "#tag@you!!", "a\x00b", "end\x00",
       "İstanbul ǅ ß", "  \t\n ", "x" * 500, "\"quoted\" “curly” ?!"]


def test_word_counts_equal_the_count_vectorizer(trump):
    texts = as_text(pd.concat([trump["text"], pd.Series(ODD)])).tolist()
    for ngrams in ((1, 1), (1, 2), (2, 3)):
        vec = make_tfidf(5000).set_params(ngram_range=ngrams).fit(texts[:600])
        assert batch_tokenizable(vec)
        clean = [t for t in texts if "\x00" not in t]
        got = word_counts(vec, clean)
        # The vectorizer's own counts (CountVectorizer.transform, before the TF-IDF weights).
        expected = super(type(vec), vec).transform(clean)
        assert got.shape == expected.shape and got.has_sorted_indices
        assert (got != expected).nnz == 0
        np.testing.assert_array_equal(got.indptr, expected.indptr)
        np.testing.assert_array_equal(got.indices, expected.indices)
    # A NUL inside a text would be taken for a document end: the caller falls back.
    assert word_counts(vec, texts) is None


def test_frame_columns_look_up_once_per_distinct_value():
    frame = pd.DataFrame({"c": ["a", None, "b", "a", np.nan, "zz"]})
    calls: list[object] = []

    def fn(v: object) -> int:
        calls.append(v)
        return {"a": 1, "b": 2}.get(v, -1)  # type: ignore[arg-type]

    out = FrameColumns(frame).lookup("c", fn)
    assert out.tolist() == [1, -1, 2, 1, -1, -1]
    assert sorted(map(str, calls)) == ["None", "a", "b", "zz"]
