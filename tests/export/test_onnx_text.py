"""ONNX export of text columns (trump_tweet_source's tweets): parity per model family and
per task on held-back tweets plus added ones (empty, missing, punctuation alone, hashtags
and mentions, accents and capitals, CJK, emoji, right-to-left, unseen words), the text
nodes against scikit-learn's TF-IDF and Python's lengths on many strings, and the clear
refusals of what has no exact form (character n-grams, Greek sigma)."""

from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwright.datasets import load_suite
from mlwright.exceptions import ExportError
from mlwright.export.core import parity_rows, to_onnx
from mlwright.export.parity import PROBA_ATOL, VALUE_RTOL
from mlwright.export.runtime import OnnxPredictor
from mlwright.registry.model import LoadedModel

TRAIN_ROWS = 500
TARGETS = {"binary": "source", "multiclass": "source", "regression": "retweet_count"}
# Tweets the data does not hold, at the tokenizer's and the lowering's edges.
ADDED = ["", None, np.nan, "!!! ?? \u201c\u201d", "#MAGA @FoxNews #", "GREAT AGAIN!!",
         "Caf\u00e9 \u00c9COLE na\u00efve \u0130STANBUL stra\u00dfe \u1e9e",
         "\u6771\u4eac\u30bf\u30ef\u30fc \U0001f600\U0001f1fa\U0001f1f8",
         "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd", "zxqv qwertyuiop",
         "The\u00a0New\u2028York\tTimes\n", "THE NEW YORK TIMES", "tHe ApPrEnTiCe", "   "]


@functools.cache
def _table(task: str) -> pd.DataFrame:
    df = load_suite("trump_tweet_source", nrows=700, seed=1)
    if task == "binary":  # Android or not: the question the data set was gathered for
        df = df.assign(source=np.where(df["source"] == "android", "android", "other"))
    return df


@functools.cache
def _loaded(task: str, family: str) -> LoadedModel:
    import mlwright as mw

    df = _table(task)
    result = mw.train(df.iloc[:TRAIN_ROWS], TARGETS[task], time_budget=60, n_trials=1, cv=2,
                      families=[family], seed=0, n_jobs=1)
    assert result.model.preps[result.model.members[0]["style"]].plan.text == ["text"]
    return LoadedModel(model=result.model, contract=result.contract,
                       name=f"trump-{task}-{family}", version="1")


def _rows(task: str) -> pd.DataFrame:
    held = _table(task).iloc[TRAIN_ROWS:].drop(columns=TARGETS[task]).reset_index(drop=True)
    texts = [*ADDED, " ".join(held["text"])]  # a long document: every held-back tweet
    added = pd.concat([held.head(1)] * len(texts), ignore_index=True)
    added["text"] = pd.Series(texts, dtype=object)
    return pd.concat([held, added], ignore_index=True)


def _check(loaded: LoadedModel, rows: pd.DataFrame) -> float:
    """The export's parity holds, and an independent comparison on the same rows agrees;
    returns the largest error."""
    exported = to_onnx(loaded, rows=rows)
    parity = exported.parity
    assert parity.ok, parity.failures[:3]
    frame = parity_rows(loaded, rows)
    assert frame["text"].isna().any() and (frame["text"] == "").any()
    model = loaded.model
    predictor = OnnxPredictor(exported.data)
    assert predictor.kinds["text"] == "text"
    ref = model.raw_predict(frame)
    pred, proba = predictor.predict_frame(frame)
    if str(model.task) == "regression":
        error = np.abs(pred - ref) / np.maximum(np.abs(ref), 1e-6)
        assert error.max() <= VALUE_RTOL
    else:
        error = np.abs(proba - ref).max(axis=1)
        assert error.max() <= PROBA_ATOL
        differ = sum(a != b for a, b in zip(pred, model.predict(frame), strict=True))
        assert differ <= parity.ties
    assert parity.near == 0
    _features_match(model, frame)
    # A batch without one token anywhere (the tokenizer's output has no column).
    blank = frame.head(3).assign(text=pd.Series(["", None, "... --"], dtype=object))
    got, got_proba = predictor.predict_frame(blank)
    if str(model.task) == "regression":
        np.testing.assert_allclose(got, model.raw_predict(blank), rtol=VALUE_RTOL)
    else:
        np.testing.assert_allclose(got_proba, model.raw_predict(blank), rtol=0,
                                   atol=PROBA_ATOL)
    # Records (the server's path) answer as the frame does.
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for record in records:
        if record.get("created_at") is not None:
            record["created_at"] = record["created_at"].isoformat()
    by_records = predictor.predict_records(records)
    np.testing.assert_array_equal(by_records[0], pred)
    return float(error.max())


def _features_match(model: Any, frame: pd.DataFrame) -> None:
    """Each style's design matrix from the graph equals ``prep.transform`` (every text
    feature, even one no tree splits on)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from mlwright.export.graph import _Graph, _prep_nodes, input_kinds
    from mlwright.export.runtime import feed

    kinds = input_kinds(model)
    for prep in model.preps.values():
        g = _Graph()
        out = _prep_nodes(g, prep, {c: c for c in kinds})
        g.nodes.append(helper.make_node("Identity", [out], ["X"]))
        inputs = [helper.make_tensor_value_info(c, TensorProto.DOUBLE if k in (
            "number", "date") else TensorProto.STRING, [None, 1]) for c, k in kinds.items()]
        graph = helper.make_graph(g.nodes, "prep", inputs, [helper.make_tensor_value_info(
            "X", TensorProto.DOUBLE, [None, None])], g.initializers)
        onx = helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3),
            helper.make_opsetid("com.microsoft", 1)])
        onx.ir_version = 8
        session = ort.InferenceSession(onx.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        used = {i.name for i in session.get_inputs()}
        got = session.run(None, {c: v for c, v in feed(frame, kinds).items() if c in used})[0]
        want = prep.transform(frame)
        want = want.toarray() if hasattr(want, "toarray") else np.asarray(want)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("family", ["lightgbm", "linear"])
@pytest.mark.slow
def test_text_parity_per_task(family: str, task: str) -> None:
    """Trees read naive Bayes (classes) or ridge (numbers) scores and lengths of the text;
    the linear model its TF-IDF itself."""
    _check(_loaded(task, family), _rows(task))


# The MLP is not tried on text (sparse TF-IDF: its family's why_unsupported).
@pytest.mark.parametrize("family", ["xgboost", "random_forest", "extra_trees", "hist_gb",
                                    "catboost"])
@pytest.mark.slow
def test_text_parity_per_family(family: str) -> None:
    if family == "catboost":  # its exporter takes no categorical features: there are none
        assert not _loaded("multiclass", family).model.preps["tree"].ordinal_
    _check(_loaded("multiclass", family), _rows("multiclass"))


@pytest.mark.slow
def test_text_in_an_ensemble_of_styles() -> None:
    import mlwright as mw

    df = _table("binary")
    result = mw.train(df.iloc[:TRAIN_ROWS], "source", time_budget=60, n_trials=2,
                      families=["lightgbm", "linear"], seed=0, n_jobs=1)
    assert set(result.model.preps) == {"tree", "linear"}
    _check(LoadedModel(model=result.model, contract=result.contract, name="both"),
           _rows("binary"))


# ---- the text nodes alone, on many strings ---------------------------------------------------

def _session(build: Any) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from mlwright.export.graph import _Graph

    g = _Graph()
    out = build(g)
    g.nodes.append(helper.make_node("Identity", [out], ["out"]))
    graph = helper.make_graph(
        g.nodes, "text", [helper.make_tensor_value_info("x", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("out", TensorProto.DOUBLE, [None, None])],
        g.initializers)
    onx = helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3),
        helper.make_opsetid("com.microsoft", 1)])
    onx.ir_version = 8
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def _strings() -> tuple[list[str], list[Any]]:
    """(texts to fit a vocabulary on, texts to compare on): real tweets, tweets with their
    letters raised at random, and strings of a small hard alphabet (dotted and dotless i,
    sharp s, Kelvin and Angstrom signs, a title-case digraph, a combining dot, Cyrillic,
    no-break and line separators, emoji, CJK, marks that end a token)."""
    from mlwright.prep.text import as_text

    tweets = list(as_text(load_suite("trump_tweet_source", nrows=800, seed=4)["text"]))
    rng = random.Random(0)
    edges = [w for w in ADDED if isinstance(w, str)]
    fit = tweets + edges * 3 + ["\u043f\u0440\u0438\u0432\u0435\u0442 caf\u00e9 kelvin "
                                "\u00e5ngstr\u00f6m stra\u00dfe i\u0307x \u01c6ungla"] * 3
    alphabet = [*("abkiAKI\u0130\u0131\u00e9\u00c9\u00df\u1e9e\u212a\u212b\u00e5\u01c5"
                  "\u0307\u041f\u043f #@!?\"\u201c\u201d_\u00a0\u2028\t\n1\u00bd.'-"
                  "\U0001f600\u6771"), "trump", "TRUMP", "Great", "the", "caf\u00c9"]
    words = sorted({w for t in tweets for w in t.split()})
    texts: list[Any] = list(fit)
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
              for _ in range(600)]
    texts += ["".join(c.upper() if rng.random() < 0.3 else c for c in
                      " ".join(rng.choice(words) for _ in range(rng.randint(0, 15))))
              for _ in range(400)]
    return fit, [*texts, None, np.nan, ""]


def test_tfidf_nodes_match_scikit_learn_on_many_strings() -> None:
    from mlwright.export.text import tfidf_block
    from mlwright.prep.text import as_text, make_tfidf

    fit, texts = _strings()
    vec = make_tfidf(20000).fit(as_text(fit))
    assert {"caf\u00e9", "\u043f\u0440\u0438\u0432\u0435\u0442", "stra\u00dfe"} <= set(
        vec.vocabulary_)
    session = _session(lambda g: tfidf_block(g, "text", "x", vec))
    x = as_text(texts).astype(object).reshape(-1, 1)
    got = session.run(None, {"x": x})[0]
    np.testing.assert_allclose(got, vec.transform(as_text(texts)).toarray(), rtol=0,
                               atol=1e-12)
    # A long document (every tweet, its terms repeated hundreds of times) beside short ones.
    # and one huge token (only its first characters are split).
    long = [" ".join(fit), "short", None, "Q" * 50_000 + " the " + "k" * 300, "The"]
    got = session.run(None, {"x": as_text(long).astype(object).reshape(-1, 1)})[0]
    np.testing.assert_allclose(got, vec.transform(as_text(long)).toarray(), rtol=0,
                               atol=1e-12)
    # A batch without a single token: the tokenizer's output has no column at all.
    empty = np.asarray(["", "...", "   "], dtype=object).reshape(-1, 1)
    np.testing.assert_array_equal(session.run(None, {"x": empty})[0],
                                  np.zeros((3, len(vec.vocabulary_))))


def test_length_nodes_match_python_on_many_strings() -> None:
    from mlwright.export.text import text_lengths
    from mlwright.prep.text import TextScores, as_text

    _, texts = _strings()
    texts += ["\x1c\x1d\x1e\x1f\x85\u1680\u2000\u200a\u202f\u205f\u3000",
              "\u200b\ufeff", "e\u0301\u0301",  # zero-width: not spaces to str.split
              # lengths are counted in pieces of 64 code points: around their edges
              "a" * 63, "a" * 64, "a" * 65, "\u00e9" * 128, "\U0001f600" * 63 + "ab",
              "\n" * 64 + " ", " " * 129]
    session = _session(lambda g: text_lengths(g, "x"))
    x = as_text(texts).astype(object).reshape(-1, 1)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0],
                                  TextScores._lengths(as_text(texts)))


def test_token_pattern_keeps_pythons_word_characters() -> None:
    """The RE2 class is written from Python's tables: a letter, digit, number sign or
    underscore once lowered; a combining mark is not one (as in Python's ``re``)."""
    import re

    from mlwright.export.text import token_pattern

    pattern = token_pattern()
    assert "\\x{301}" not in pattern and "\\x{300}-" not in pattern
    word = re.compile(r"(?u)\w")
    for c in ["\u00bd", "\u216b", "\u2460", "\u01c5", "_", "\u0661"]:
        assert word.fullmatch(c.lower())


@pytest.mark.slow
def test_every_code_point_tokenizes_and_counts_as_python() -> None:
    """Each of the 1,112,063 code points (the capital sigma apart, refused by vocabulary)
    inside a hashtag and a word: the ONNX tokens, lowered by the export's table, are
    ``re.findall(TOKENS, text.lower())``; ``str.len`` and ``str.split`` counts agree."""
    import re

    from onnx import TensorProto, helper

    from mlwright.export.text import _lowered, text_lengths, token_pattern
    from mlwright.prep.text import TOKENS, TextScores

    points = [u for u in range(0x110000) if not 0xD800 <= u <= 0xDFFF and u != 0x3A3]
    texts = np.asarray(["#a" + chr(u) + "B" + chr(u) for u in points], dtype=object)

    def tokens(g: Any) -> str:
        flat = g.op("Reshape", ["x", g.const([-1], dtype=np.int64)])
        return str(g.op("Tokenizer", [flat], domain="com.microsoft",
                        tokenexp=token_pattern(), mark=0, mincharnum=1, pad_value=" "))

    import onnxruntime as ort

    from mlwright.export.graph import _Graph

    g = _Graph()
    g.nodes.append(helper.make_node("Identity", [tokens(g)], ["out"]))
    graph = helper.make_graph(
        g.nodes, "tokens", [helper.make_tensor_value_info("x", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("out", TensorProto.STRING, [None, None])],
        g.initializers)
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15),
                                                  helper.make_opsetid("com.microsoft", 1)])
    onx.ir_version = 8
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": texts.reshape(-1, 1)})[0]
    lower, pattern = _lowered(), re.compile(TOKENS)
    differ = [hex(u) for u, text, row in zip(points, texts, got, strict=True)
              if ["".join(lower.get(c, c) for c in t) for t in row if t != " "]
              != pattern.findall(text.lower())]
    assert differ == []
    lengths = _session(lambda g: text_lengths(g, "x"))
    np.testing.assert_array_equal(lengths.run(None, {"x": texts.reshape(-1, 1)})[0],
                                  TextScores._lengths(texts))


# ---- refusals ---------------------------------------------------------------------------------

def test_character_ngrams_are_refused_naming_the_column() -> None:
    from mlwright.export.graph import _Graph
    from mlwright.export.text import tfidf_block
    from mlwright.prep.text import make_tfidf

    fit, _ = _strings()
    union = make_tfidf(1000, char_ngrams=True).fit(fit[:300])
    with pytest.raises(ExportError, match=r"Text column 'tweet'.*character n-grams.*"
                                          r"char_ngrams off"):
        tfidf_block(_Graph(), "tweet", "x", union)


def test_greek_sigma_in_the_vocabulary_is_refused() -> None:
    from mlwright.export.graph import _Graph
    from mlwright.export.text import tfidf_block
    from mlwright.prep.text import make_tfidf

    fit, _ = _strings()
    greek = ["\u039f\u0394\u039f\u03a3 \u03bf\u03b4\u03bf\u03c2"] * 3  # ΟΔΟΣ οδος
    vec = make_tfidf(1000).fit([*fit[:300], *greek])
    with pytest.raises(ExportError, match=r"Text column 'tweet'.*sigma.*Serve the Python"):
        tfidf_block(_Graph(), "tweet", "x", vec)


def test_other_tfidf_options_are_refused_naming_the_option() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mlwright.export.graph import _Graph
    from mlwright.export.text import tfidf_block
    from mlwright.prep.text import TOKENS

    fit, _ = _strings()
    vec = TfidfVectorizer(token_pattern=r"\w+").fit(fit[:300])
    with pytest.raises(ExportError, match=r"Text column 'tweet'.*token_pattern="):
        tfidf_block(_Graph(), "tweet", "x", vec)
    vec = TfidfVectorizer(ngram_range=(1, 3), token_pattern=TOKENS).fit(fit[:300])
    with pytest.raises(ExportError, match=r"Text column 'tweet'.*ngram_range=\(1, 3\)"):
        tfidf_block(_Graph(), "tweet", "x", vec)
