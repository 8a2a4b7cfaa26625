"""Fuzzing ``mlwright.load``'s sniffing: the encoding and delimiter of a CSV, the JSON Lines
/ JSON array choice, and the Parquet reader.

Properties: any bytes under a data file's name give a frame or an ``MlwrightError`` naming
the file (never another exception), promptly; and a real telco_churn slice whose text
cells hold delimiters, quotes, line breaks and non-ASCII letters, written with any of the
four delimiters and four encodings, is read back with its header, its rows and its text.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlwright as mw
from mlwright.exceptions import DataSourceError, MlwrightError

QUICK = settings(max_examples=60, deadline=3000, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))
DEEP = settings(max_examples=500, deadline=5000, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

#: Letters every drawn encoding writes (cp1252 has the euro sign, latin-1 does not), the
#: four delimiters, both quotes, spaces and line breaks.
ALPHABET = "abcXYZ019 .-éüñÆ€ß,;|\t\"'\n"
ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "utf-16"]


def _load(body: bytes, suffix: str) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(body)
        try:
            return mw.load(path)
        except MlwrightError as exc:
            assert str(path) in str(exc) or "upload" in str(exc), exc
            return exc


@st.composite
def mangled(draw: st.DrawFn, text: bytes) -> bytes:
    """``text`` cut short, with bytes overwritten, or random bytes."""
    edit = draw(st.sampled_from(["cut", "overwrite", "random"]))
    if edit == "random":
        return draw(st.binary(max_size=400))
    if edit == "cut":
        return text[:draw(st.integers(0, len(text)))]
    at = draw(st.integers(0, len(text) - 1))
    return text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at + 8:]


@pytest.fixture(scope="module")
def slice_(telco: pd.DataFrame) -> pd.DataFrame:
    return telco.iloc[:6, :6].reset_index(drop=True)


def _any_bytes(slice_: pd.DataFrame) -> Any:
    csv_text = slice_.to_csv(index=False).encode()
    jsonl = slice_.to_json(orient="records", lines=True).encode()
    buffer = io.BytesIO()
    slice_.to_parquet(buffer)

    @given(case=st.one_of(
        st.tuples(st.just(".csv"), mangled(csv_text)),
        st.tuples(st.just(".tsv"), mangled(csv_text.replace(b",", b"\t"))),
        st.tuples(st.just(".jsonl"), mangled(jsonl)),
        st.tuples(st.just(".json"), mangled(b"[" + jsonl.replace(b"\n", b",")[:-1] + b"]")),
        st.tuples(st.just(".parquet"), mangled(buffer.getvalue())),
    ))
    def a_frame_or_a_clear_error(case: tuple[str, bytes]) -> None:
        suffix, body = case
        out = _load(body, suffix)
        assert isinstance(out, pd.DataFrame | MlwrightError)

    return a_frame_or_a_clear_error


def test_any_bytes_give_a_frame_or_a_clear_error(slice_: pd.DataFrame) -> None:
    QUICK(_any_bytes(slice_))()


@st.composite
def written(draw: st.DrawFn, slice_: pd.DataFrame) -> tuple[bytes, pd.DataFrame]:
    """The slice with one text column of fuzzed text (each value starting with a letter, so
    that it stays text), written with a drawn delimiter, encoding and line ending."""
    frame = slice_.copy()
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    # csv.writer quotes a value holding a character of the line ending, not the others.
    alphabet = ALPHABET.replace("\n", "") if ending == "\r" else ALPHABET
    frame["note"] = draw(st.lists(st.text(alphabet, max_size=10).map(lambda t: "q" + t),
                                  min_size=len(frame), max_size=len(frame)))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=ending).writerows(
        [list(frame.columns), *frame.astype(str).to_numpy().tolist()])
    return out.getvalue().encode(draw(st.sampled_from(ENCODINGS))), frame


def _round_trip(slice_: pd.DataFrame) -> Any:
    @given(case=written(slice_))
    def read_back(case: tuple[bytes, pd.DataFrame]) -> None:
        body, frame = case
        got = _load(body, ".csv")
        assert isinstance(got, pd.DataFrame), (body, got)
        assert list(got.columns) == list(frame.columns)
        assert len(got) == len(frame)
        assert got["note"].tolist() == frame["note"].tolist(), (body, got["note"].tolist())
        assert got["churn"].tolist() == frame["churn"].tolist()

    return read_back


def test_any_delimiter_and_encoding_read_back(slice_: pd.DataFrame) -> None:
    QUICK(_round_trip(slice_))()


@pytest.mark.deep
def test_sniffing_deeply(slice_: pd.DataFrame) -> None:
    DEEP(_any_bytes(slice_))()
    DEEP(_round_trip(slice_))()


@pytest.mark.parametrize("engine", ["pyarrow", "pandas"])
def test_carriage_return_line_endings(slice_: pd.DataFrame, tmp_path: Path,
                                      engine: str) -> None:
    """Lines ended by a lone "\r" (old Mac exports): the header was split by Python's csv
    module in newline-translating mode and load() raised a bare csv.Error."""
    path = tmp_path / "mac.csv"
    path.write_bytes(slice_.to_csv(index=False, sep=";", lineterminator="\r").encode())
    got = mw.load(path, engine=engine)
    assert list(got.columns) == list(slice_.columns) and len(got) == len(slice_)
    assert got["churn"].tolist() == slice_["churn"].tolist()


def test_a_parquet_file_with_text_that_is_not_utf8(tmp_path: Path) -> None:
    """A damaged Parquet string column: load() let pyarrow's ArrowException escape from
    to_pandas instead of a DataSourceError naming the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "damaged.parquet"
    pq.write_table(pa.table({"city": ["Zürich"] * 4}), path, compression="none",
                   use_dictionary=False, write_statistics=False)
    body = path.read_bytes()
    at = body.index("Zürich".encode())
    path.write_bytes(body[:at] + b"\xff\xfe" + body[at + 2:])
    with pytest.raises(DataSourceError, match=r"damaged\.parquet.*UTF8"):
        mw.load(path)
