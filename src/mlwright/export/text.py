"""Text columns as ONNX nodes, exactly as :mod:`mlwright.prep.text` prepares them.

Python lowercases the whole text (``str.lower``), finds its tokens with
:data:`~mlwright.prep.text.TOKENS` (``re``'s Unicode ``\\w``), and counts word and bigram
TF-IDF; the tree style scores that with naive Bayes or ridge and adds ``str.len`` and
``len(str.split())``. ONNX Runtime's tools differ: its ``Tokenizer`` (com.microsoft) runs
RE2, whose ``\\w`` is ASCII, and ``StringNormalizer`` lowers by a C++ locale (``"C"``
lowers ASCII alone; others are missing on many machines). So here:

* tokens come from the *original* text through an RE2 class written out from Python's own
  tables: every code point whose lowercase ``re`` calls a word character (so a capital
  letter is one exactly when Python's lowered text has a word character there). ``İ``
  lowers to ``i`` plus a combining dot, which ends a Python token: it ends one here too;
* lowering is per character, by table: each token is split into code points (a second
  ``Tokenizer``), each code point becomes the index of its Python lowercase in the
  vocabulary's alphabet (a ``LabelEncoder``), and a walk of the vocabulary's trie
  (``LabelEncoder`` steps on ``state * width + char``) gives the word's index, or -1 for a
  word outside it. No locale is read, and a token's case variants need no listing. Each
  row gets one padding token more, so a batch without a token still has a column;
* word and bigram TF-IDF by token, not by vocabulary column: bigram keys from adjacent
  word indexes, each term's column by ``LabelEncoder``, its count read from
  ``TfIdfVectorizer``'s exact float32 counts, ``1 + log(tf)`` times the idf, the L2 norm
  over the row (each occurrence adding its square over the count), in doubles. The tree
  style's naive Bayes or ridge is a ``Gather`` of the model's rows times each
  occurrence's share, summed (no element-wise work over the vocabulary: about 0.2 ms a
  row); the linear style scatters the weights into its dense TF-IDF columns (a term's
  repeats write the same value);
* lengths: code points from ``Tokenizer`` pieces of ``(?s).{1,64}`` (64 a piece, then
  the last piece's ``(?s).`` matches), words as matches of ``[^<str.isspace() class>]+``.
  Each distinct token of a batch is split into characters once (``Unique``).

What stays inexact is refused (:class:`~mlwright.exceptions.ExportError` naming the column):
a vocabulary holding a small sigma, U+03C3 or U+03C2 (Python lowers a capital sigma to
either by what follows the word), character n-grams, vectorizer options other than
mlwright's own. The parity check catches anything else before a file is written.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any

import numpy as np

from mlwright.exceptions import ExportError

__all__ = ["text_lengths", "text_scores", "tfidf_block"]

_DOTTED_I = "\u0130"          # lowers to "i" + U+0307 (not a word character)
_SIGMAS = ("\u03c3", "\u03c2")  # small sigmas: which one Python writes depends on the next word
_WORD_PAD = " "               # never a token (a token holds no space)
_CHAR_PAD = "  "              # never one code point
_PIECE = 64                   # code points per piece when counting a text's length
_PIECE_PAD = "\x00" * (_PIECE + 1)  # never one piece
_UNKNOWN = -(2 ** 40)         # a character outside the vocabulary: any walk through it dies
_MAX_CODE = sys.maxunicode


def _ranges(members: list[int]) -> str:
    """An RE2 character class body for the sorted code points ``members``."""
    out = []
    start = prev = members[0]
    for u in members[1:]:
        if u == prev + 1:
            prev = u
            continue
        out.append(_span(start, prev))
        start = prev = u
    out.append(_span(start, prev))
    return "".join(out)


def _span(a: int, b: int) -> str:
    return f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}"


def _code_points() -> range:
    return range(_MAX_CODE + 1)


@functools.cache
def _word_class() -> str:
    """Code points whose Python lowercase is one ``re`` word character (``İ`` apart)."""
    word = re.compile(r"(?u)\w")
    members = [u for u in _code_points() if not 0xD800 <= u <= 0xDFFF
               and len(low := chr(u).lower()) == 1 and word.fullmatch(low)]
    return _ranges(members)


@functools.cache
def _space_class() -> str:
    """What ``str.split()`` splits on: ``str.isspace()``."""
    return _ranges([u for u in _code_points() if chr(u).isspace()])


@functools.cache
def _lowered() -> dict[str, str]:
    """Every code point whose lowercase inside a token differs from itself, to that one
    character (``İ`` ends a token as ``i``; ``Σ`` is left out, see the module docstring)."""
    out = {}
    for u in _code_points():
        if 0xD800 <= u <= 0xDFFF or u == 0x3A3:
            continue
        c = chr(u)
        low = c.lower()
        if low != c and len(low) == 1:
            out[c] = low
    out[_DOTTED_I] = "i"
    return out


def token_pattern() -> str:
    """mlwright's :data:`~mlwright.prep.text.TOKENS` for RE2, read on the original text."""
    word = f"[{_word_class()}]"
    return f'[#@]?(?:{word}*{_DOTTED_I}|{word}+)|[!?"\u201c\u201d]'


def _check(column: str, vec: Any) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mlwright.prep.text import TOKENS

    if not isinstance(vec, TfidfVectorizer):
        raise ExportError(
            f"Text column {column!r} is prepared with {type(vec).__name__} (character "
            f"n-grams, char_ngrams=True): character n-grams over word boundaries have no "
            f"exact ONNX form. Retrain with char_ngrams off (the default) to export, or "
            f"serve the Python model.")
    # What changes transform()'s answer (min_df, max_features or smooth_idf shape the
    # fitted vocabulary and idf, which are read as they are).
    wanted = {"input": "content", "analyzer": "word", "lowercase": True,
              "token_pattern": TOKENS, "binary": False, "strip_accents": None,
              "preprocessor": None, "tokenizer": None, "stop_words": None, "norm": "l2"}
    for key, value in wanted.items():
        got = getattr(vec, key)
        if got != value and not (key == "norm" and got is None):
            raise ExportError(
                f"Text column {column!r} has a TF-IDF with {key}={got!r}; the ONNX export "
                f"writes mlwright's own ({key}={value!r}) only. Retrain with mlwright's "
                f"text preparation, or serve the Python model.")
    if tuple(vec.ngram_range) not in ((1, 1), (1, 2)):
        raise ExportError(
            f"Text column {column!r} has ngram_range={vec.ngram_range}; the ONNX export "
            f"writes words and bigrams, (1, 1) or (1, 2). Retrain with mlwright's text "
            f"preparation, or serve the Python model.")


def _vocabulary(column: str, vec: Any) -> tuple[list[str], list[tuple[int, ...]], list[int]]:
    """(the words, each term as word indexes, each term's output column)."""
    words: dict[str, int] = {}
    terms: list[tuple[int, ...]] = []
    columns: list[int] = []
    for term, j in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1]):
        parts = term.split(" ")
        terms.append(tuple(words.setdefault(p, len(words)) for p in parts))
        columns.append(int(j))
    sigma = next((w for w in words if any(s in w for s in _SIGMAS)), None)
    if sigma is not None:
        raise ExportError(
            f"Text column {column!r} has the word {sigma!r} in its vocabulary: Python "
            f"lowercases a capital sigma to \u03c3 or \u03c2 by what follows the word, "
            f"which the ONNX tokenizer cannot see, so Greek text is not exported exactly. "
            f"Serve the Python model, or retrain without the column.")
    return list(words), terms, columns


def _as_column(g: Any, x: str) -> str:
    """A ``[N, 1]`` string input as ``[N]``."""
    return g.op("Reshape", [x, g.const([-1], dtype=np.int64)])


def _with_pad(g: Any, tokens: str, flat: str, pad: str) -> str:
    """``tokens`` (``[N, T]``, ``T`` maybe 0) with one more column of ``pad``."""
    column = g.op("LabelEncoder", [flat], domain="ai.onnx.ml", keys_strings=[""],
                  values_strings=[pad], default_string=pad)
    return g.op("Concat", [tokens, g.op("Unsqueeze", [column, g.const([1], dtype=np.int64)])],
                axis=1)


def _length(g: Any, flat: str) -> str:
    """``[N, 1]`` doubles: ``str.len`` (code points), from pieces of up to
    :data:`_PIECE` code points (a long text is not split into one string per character):
    ``_PIECE`` per piece before the last, plus the last piece's code points."""
    pieces = g.op("Tokenizer", [flat], domain="com.microsoft",
                  tokenexp=f"(?s).{{1,{_PIECE}}}", mark=0, mincharnum=1, pad_value=_PIECE_PAD)
    pieces = _with_pad(g, pieces, flat, _PIECE_PAD)
    present = g.op("LabelEncoder", [pieces], domain="ai.onnx.ml", keys_strings=[_PIECE_PAD],
                   values_int64s=[0], default_int64=1)
    count = g.op("ReduceSum", [present, g.const([1], dtype=np.int64)], keepdims=1)
    last = g.op("Max", [g.op("Sub", [count, g.const(1, dtype=np.int64)]),
                        g.const(0, dtype=np.int64)])
    tail = _as_column(g, g.op("GatherElements", [pieces, last], axis=1))
    full = g.op("Mul", [last, g.const(_PIECE, dtype=np.int64)])
    total = g.op("Add", [full, _count_int(g, tail, "(?s).", _CHAR_PAD)])
    total = g.op("Where", [g.op("Equal", [count, g.const(0, dtype=np.int64)]),
                           g.const(0, dtype=np.int64), total])
    return g.op("Cast", [total], to=11)


def _count_int(g: Any, flat: str, pattern: str, pad: str) -> str:
    """``[N, 1]`` int64: how many matches of ``pattern`` each string holds."""
    tokens = g.op("Tokenizer", [flat], domain="com.microsoft", tokenexp=pattern, mark=0,
                  mincharnum=1, pad_value=pad)
    present = g.op("LabelEncoder", [tokens], domain="ai.onnx.ml", keys_strings=[pad],
                   values_int64s=[0], default_int64=1)
    return g.op("ReduceSum", [present, g.const([1], dtype=np.int64)], keepdims=1)


def text_lengths(g: Any, x: str) -> str:
    """``[N, 2]``: ``str.len`` and ``len(str.split())`` of ``x`` (``[N, 1]`` strings)."""
    flat = _as_column(g, x)
    words = g.op("Cast", [_count_int(g, flat, f"[^{_space_class()}]+", _WORD_PAD)], to=11)
    return g.op("Concat", [_length(g, flat), words], axis=1)


def _word_indexes(g: Any, x: str, words: list[str]) -> str:
    """``[N, T + 1]`` int64: the vocabulary index of each token of ``x`` (-1 outside it;
    the last column -1 for every row)."""
    from onnx import TensorProto, helper

    flat = _as_column(g, x)
    tokens = g.op("Tokenizer", [flat], domain="com.microsoft", tokenexp=token_pattern(),
                  mark=0, mincharnum=1, pad_value=_WORD_PAD)
    tokens = _with_pad(g, tokens, flat, _WORD_PAD)
    shape = g.op("Shape", [tokens])
    # Each distinct token of the batch once (the padding among them): a long text pads
    # every row of its batch to its length, and splitting that into characters is not free.
    distinct = g.name("distinct")
    inverse = g.name("inverse")
    g.nodes.append(helper.make_node(
        "Unique", [g.op("Reshape", [tokens, g.const([-1], dtype=np.int64)])],
        [distinct, g.name("first"), inverse, g.name("counts")], sorted=0))
    longest = max((len(w) for w in words), default=0)
    # Only a token's first characters matter (one longer than every word is outside the
    # vocabulary): cut each to its first piece, so one huge token does not pad them all.
    piece = max(longest + 1, _PIECE * 4)
    pieces = g.op("Tokenizer", [distinct], domain="com.microsoft",
                  tokenexp=f"(?s).{{1,{piece}}}", mark=0, mincharnum=1, pad_value=_PIECE_PAD)
    start = g.op("Gather", [_with_pad(g, pieces, distinct, _PIECE_PAD),
                            g.const(0, dtype=np.int64)], axis=1)
    chars = g.op("Tokenizer", [start], domain="com.microsoft", tokenexp="(?s).", mark=0,
                 mincharnum=1, pad_value=_CHAR_PAD)
    # The alphabet: every character of a word (1..A), and what lowers to one of them.
    alphabet = sorted({c for w in words for c in w})
    index = {c: i + 1 for i, c in enumerate(alphabet)}
    keys = [_CHAR_PAD, *alphabet]
    values = [0, *(index[c] for c in alphabet)]
    for upper, low in _lowered().items():
        if low in index and upper not in index:
            keys.append(upper)
            values.append(index[low])
    codes = g.op("LabelEncoder", [chars], domain="ai.onnx.ml", keys_strings=keys,
                 values_int64s=values, default_int64=_UNKNOWN)
    # The trie of the words: state 0 is the root; state * width + char -> next state.
    width = len(alphabet) + 1
    edges: dict[int, int] = {}
    accept: dict[int, int] = {}
    for w, word in enumerate(words):
        state = 0
        for c in word:
            key = state * width + index[c]
            if key not in edges:
                edges[key] = len(edges) + 1
            state = edges[key]
        accept[state] = w
    rows = g.op("Slice", [g.op("Shape", [codes]), g.const([0], dtype=np.int64),
                          g.const([1], dtype=np.int64)])
    tail = g.op("ConstantOfShape", [g.op("Concat", [rows, g.const([longest + 1],
                                                                  dtype=np.int64)], axis=0)],
                value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
    codes = g.op("Concat", [codes, tail], axis=1)
    zero = g.const(0, dtype=np.int64)
    state = g.op("Mul", [g.op("Gather", [codes, zero], axis=1), zero])  # the root, [M]
    edge_keys = list(edges)
    edge_values = [edges[k] for k in edge_keys]
    for step in range(longest):
        c = g.op("Gather", [codes, g.const(step, dtype=np.int64)], axis=1)
        key = g.op("Add", [g.op("Mul", [state, g.const(width, dtype=np.int64)]), c])
        nxt = g.op("LabelEncoder", [key], domain="ai.onnx.ml", keys_int64s=edge_keys or [-1],
                   values_int64s=edge_values or [-1], default_int64=-1)
        state = g.op("Where", [g.op("Equal", [c, zero]), state, nxt])
    found = g.op("LabelEncoder", [state], domain="ai.onnx.ml",
                 keys_int64s=list(accept) or [-2], values_int64s=list(accept.values()) or [-1],
                 default_int64=-1)
    # A token longer than every word is outside the vocabulary.
    beyond = g.op("Gather", [codes, g.const(longest, dtype=np.int64)], axis=1)
    found = g.op("Where", [g.op("Equal", [beyond, zero]), found,
                           g.const(-1, dtype=np.int64)])
    return g.op("Reshape", [g.op("Gather", [found, inverse], axis=0), shape])


def _i64(g: Any, value: Any) -> str:
    return str(g.const(value, dtype=np.int64))


def _term_weights(g: Any, column: str, x: str, vec: Any) -> tuple[str, str, str]:
    """The TF-IDF of ``x`` held by token, not by vocabulary column: ``(index, weight,
    share)``, each ``[N, K]`` over a row's words and bigrams: the term's output column (0
    for a term outside the vocabulary), its normalised TF-IDF (0 outside), and that over
    its count (so that a sum over the tokens counts each term once)."""
    _check(column, vec)
    words, terms, columns = _vocabulary(column, vec)
    ids = _word_indexes(g, x, words)
    unigram = {t[0]: j for t, j in zip(terms, columns, strict=True) if len(t) == 1}
    found = [g.op("LabelEncoder", [ids], domain="ai.onnx.ml",
                  keys_int64s=list(unigram) or [-2], values_int64s=list(unigram.values())
                  or [-1], default_int64=-1)]
    if vec.ngram_range[1] == 2:
        bigram = {t[0] * len(words) + t[1]: j for t, j in zip(terms, columns, strict=True)
                  if len(t) == 2}
        first = g.op("Slice", [ids, _i64(g, [0]), _i64(g, [-1]), _i64(g, [1])])
        second = g.op("Slice", [ids, _i64(g, [1]), _i64(g, [2 ** 62]), _i64(g, [1])])
        key = g.op("Add", [g.op("Mul", [first, _i64(g, len(words))]), second])
        both = g.op("And", [g.op("GreaterOrEqual", [first, _i64(g, 0)]),
                            g.op("GreaterOrEqual", [second, _i64(g, 0)])])
        key = g.op("Where", [both, key, _i64(g, -1)])
        found.append(g.op("LabelEncoder", [key], domain="ai.onnx.ml",
                          keys_int64s=list(bigram) or [-2],
                          values_int64s=list(bigram.values()) or [-1], default_int64=-1))
    term = g.op("Concat", found, axis=1) if len(found) > 1 else found[0]
    index = g.op("Max", [term, _i64(g, 0)])
    # Each term's count in its row: TfIdfVectorizer's exact float32 counts, read back at
    # the term's columns (linear in the row's length, whatever its number of repeats).
    order = sorted(range(len(terms)), key=lambda i: len(terms[i]))
    longest = max(len(t) for t in terms)
    counts = g.op("TfIdfVectorizer", [ids], mode="TF", min_gram_length=1,
                  max_gram_length=longest, max_skip_count=0,
                  ngram_counts=[0, sum(1 for t in terms if len(t) == 1)][:longest],
                  ngram_indexes=[columns[i] for i in order],
                  pool_int64s=[w for i in order for w in terms[i]])
    tf = g.op("Cast", [g.op("GatherElements", [counts, index], axis=1)], to=11)
    keep = g.op("GreaterOrEqual", [term, _i64(g, 0)])
    tf = g.op("Where", [keep, tf, g.const(1.0)])
    weight = g.op("Add", [g.op("Log", [tf]), g.const(1.0)]) if vec.sublinear_tf else tf
    if vec.use_idf:
        weight = g.op("Mul", [weight, g.op("Gather", [g.const(
            np.asarray(vec.idf_, dtype=np.float64)), index], axis=0)])
    weight = g.op("Where", [keep, weight, g.const(0.0)])
    if vec.norm == "l2":
        square = g.op("Div", [g.op("Mul", [weight, weight]), tf])
        norm = g.op("Sqrt", [g.op("ReduceSum", [square, _i64(g, [1])], keepdims=1)])
        norm = g.op("Where", [g.op("Equal", [norm, g.const(0.0)]), g.const(1.0), norm])
        weight = g.op("Div", [weight, norm])
    return index, weight, g.op("Div", [weight, tf])


def tfidf_block(g: Any, column: str, x: str, vec: Any) -> str:
    """``vec.transform(as_text(x))`` densely, ``[N, len(vocabulary)]`` doubles: the
    weights by token scattered into their columns (a term's repeats write the same value;
    a token outside the vocabulary goes to one extra column that is cut off)."""
    index, weight, _ = _term_weights(g, column, x, vec)
    size = len(vec.vocabulary_)
    spare = g.op("Where", [g.op("Equal", [weight, g.const(0.0)]), _i64(g, size), index])
    rows = g.op("Slice", [g.op("Shape", [index]), _i64(g, [0]), _i64(g, [1])])
    from onnx import TensorProto, helper

    zeros = g.op("ConstantOfShape", [g.op("Concat", [rows, _i64(g, [size + 1])], axis=0)],
                 value=helper.make_tensor("zero", TensorProto.DOUBLE, [1], [0.0]))
    dense = g.op("ScatterElements", [zeros, spare, weight], axis=1)
    return g.op("Slice", [dense, _i64(g, [0]), _i64(g, [size]), _i64(g, [1])])


def _weighted_sum(g: Any, index: str, weight: str, table: np.ndarray) -> str:
    """``[N, width]``: the sum over a row's tokens of ``weight`` x ``table[index]``
    (``table``: ``[vocabulary, width]``; ``weight``: a share per occurrence), the sparse
    product ``tfidf @ table``."""
    rows = g.op("Gather", [g.const(np.asarray(table, dtype=np.float64)), index], axis=0)
    scaled = g.op("Mul", [rows, g.op("Unsqueeze", [weight, _i64(g, [2])])])
    return g.op("ReduceSum", [scaled, _i64(g, [1])], keepdims=0)


def text_scores(g: Any, column: str, x: str, scores: Any) -> str:
    """:class:`~mlwright.prep.text.TextScores`' ``transform``: ``[N, scores + 2]``."""
    index, _, share = _term_weights(g, column, x, scores.vectorizer_)
    model = scores.model_
    if str(scores.task) == "regression":
        coef = np.asarray(model.coef_, dtype=np.float64).reshape(-1, 1)
        out = g.op("Add", [_weighted_sum(g, index, share, coef),
                           g.const(np.atleast_1d(np.asarray(model.intercept_, np.float64)))])
    else:
        jll = g.op("Add", [_weighted_sum(g, index, share, np.asarray(
            model.feature_log_prob_, dtype=np.float64).T),
            g.const(np.asarray(model.class_log_prior_, dtype=np.float64))])
        log_proba = g.op("Sub", [jll, g.op("ReduceLogSumExp", [jll], axes=[1], keepdims=1)])
        classes = np.asarray(scores.classes_)
        seen = np.searchsorted(classes, model.classes_)
        if not np.array_equal(seen, np.arange(len(classes))):
            spread = np.zeros((len(seen), len(classes)))
            spread[np.arange(len(seen)), seen] = 1.0
            fill = np.full(len(classes), -50.0)
            fill[seen] = 0.0
            log_proba = g.op("Add", [g.op("MatMul", [log_proba, g.const(spread)]),
                                     g.const(fill)])
        out = g.op("Sub", [log_proba, g.op("ReduceMean", [log_proba], axes=[1], keepdims=1)])
    return g.op("Concat", [out, text_lengths(g, x)], axis=1)
