"""Fuzzing the served app's parsers of outside input through the real app: JSON bodies of
``POST /v1/predict`` and CSV / Parquet uploads of ``POST /v1/predict/batch``.

For every generated request: no 5xx, an answer within a bounded time, and the answer the
reference gives: the request is refused (422, "N of M ... break the data contract") exactly
when ``data.contract.validate`` finds errors in the same values, with the same N. The
volume runs in process (starlette's TestClient); a few of the worst cases are sent to a
real uvicorn server on loopback as well.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from fuzz_values import DEEP, QUICK, damaged_parquet, json_ready, requests
from hypothesis import given, settings
from hypothesis import strategies as st
from serve_helpers import LiveServer

from mlwright.data.contract import Contract, validate
from mlwright.data.sources import sniff_csv
from mlwright.serve import create_app

#: Uploads cost more per example (a file written, read twice, validated twice).
UPLOADS = settings(QUICK, max_examples=25)
PREDICTS = settings(QUICK, max_examples=40)

#: A generous bound on one answer: a hang, not a slow answer (the telco champion answers a
#: dozen rows in milliseconds).
ANSWER_WITHIN_S = 10


@contextlib.contextmanager
def answered_within(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError when the block runs longer than ``seconds`` (SIGALRM: the
    in-process client waits in this thread while the app runs in its portal thread)."""
    def timeout(*_: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def app(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("fuzzdb") / "log.db"
    return create_app(str(run_a), database_url=f"sqlite:///{db}")


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def contract(run_a: Path) -> Contract:
    return Contract.load(run_a / "contract.json")


@pytest.fixture(scope="module")
def rows(telco_rows: pd.DataFrame) -> list[dict[str, Any]]:
    return telco_rows.head(100).astype(object).where(telco_rows.notna(), None).to_dict(
        "records")


def _refused(contract: Contract, frame: pd.DataFrame) -> int:
    """How many rows of ``frame`` the reference refuses (a column-level error: all)."""
    result = validate(frame, contract)
    if any(v.row is None for v in result.errors):
        return len(frame)
    return len(result.rows_with_errors())


def _check_answer(answer: httpx.Response, refused: int, total: int, noun: str) -> None:
    assert answer.status_code < 500, answer.text[:2000]
    if refused == 0:
        assert answer.status_code == 200, answer.text[:2000]
        return
    assert answer.status_code == 422, answer.text[:2000]
    found = re.match(r"([\d,]+) of ([\d,]+) " + noun, answer.json()["detail"])
    assert found, answer.json()["detail"]
    assert (int(found[1].replace(",", "")), int(found[2].replace(",", ""))) == (
        refused, total), answer.json()["detail"]


def _post(client: TestClient, path: str, body: bytes, content_type: str) -> httpx.Response:
    with answered_within(ANSWER_WITHIN_S):
        return client.post(path, content=body, headers={"content-type": content_type})


# -- POST /v1/predict ---------------------------------------------------------------------


@st.composite
def envelopes(draw: st.DrawFn, records: list[dict[str, Any]]) -> Any:
    """The records in one of the body forms the route takes."""
    form = draw(st.sampled_from(["list", "records", "columns", "one"]))
    if form == "list":
        return records
    if form == "records":
        return {"records": records}
    if form == "columns":
        return {"columns": {k: [r[k] for r in records] for k in records[0]}}
    return records[0]


def _predict_property(client: TestClient, contract: Contract,
                      rows: list[dict[str, Any]]) -> Any:
    @given(data=st.data())
    def answers_as_the_reference(data: st.DataObject) -> None:
        records = data.draw(requests(rows, contract.feature_names))
        payload = data.draw(envelopes([{k: json_ready(v) for k, v in r.items()}
                                       for r in records]))
        body = orjson.dumps(payload)
        sent = orjson.loads(body)  # the values as the server reads them
        sent = sent if isinstance(sent, list) else sent.get("records", [sent]) \
            if "columns" not in sent else [dict(zip(sent["columns"], v, strict=True))
                                           for v in zip(*sent["columns"].values(),
                                                        strict=True)]
        frame = pd.DataFrame({name: pd.Series([r[name] for r in sent], dtype=object)
                              for name in contract.feature_names})
        answer = _post(client, "/v1/predict", body, "application/json")
        _check_answer(answer, _refused(contract, frame), len(sent), "records")

    return answers_as_the_reference


def test_predict_answers_as_the_reference(client: TestClient, contract: Contract,
                                          rows: list[dict[str, Any]]) -> None:
    PREDICTS(_predict_property(client, contract, rows))()


@pytest.mark.deep
def test_predict_answers_as_the_reference_deeply(client: TestClient, contract: Contract,
                                                 rows: list[dict[str, Any]]) -> None:
    DEEP(_predict_property(client, contract, rows))()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(body=st.one_of(st.binary(max_size=300), JSON.map(orjson.dumps)))
@QUICK
def test_any_body_gets_a_4xx_or_an_answer(client: TestClient, body: bytes) -> None:
    answer = _post(client, "/v1/predict", body, "application/json")
    assert answer.status_code in (200, 400, 413, 422), (body, answer.text[:2000])


# -- POST /v1/predict/batch ---------------------------------------------------------------


def _read_like_the_route(body: bytes) -> pd.DataFrame:
    if body[:4] == b"PAR1":
        table = pq.read_table(io.BytesIO(body))
        table.validate(full=True)  # text that is not UTF-8: unreadable, as for the route
        return table.to_pandas()
    encoding, delimiter = sniff_csv(body)
    return pd.read_csv(io.BytesIO(body), sep=delimiter, encoding=encoding)


def _upload_answer(client: TestClient, contract: Contract, body: bytes,
                   content_type: str) -> None:
    """The upload's answer is the reference's on the table the route reads from it."""
    answer = _post(client, "/v1/predict/batch", body, content_type)
    assert answer.status_code < 500, answer.text[:2000]
    try:
        frame = _read_like_the_route(body)
    except Exception:
        assert answer.status_code == 400, answer.text[:2000]
        return
    frame.columns = [str(c) for c in frame.columns]
    if answer.status_code == 422 and "repeats the column" in answer.text:
        assert frame.columns.str.fullmatch(r".+\.\d+").any()  # pandas' x.1 of a repeat
        return
    if frame.empty:
        assert answer.status_code == 422, answer.text[:2000]
        return
    _check_answer(answer, _refused(contract, frame), len(frame), "rows")


@st.composite
def csv_uploads(draw: st.DrawFn, rows: list[dict[str, Any]], names: list[str]) -> bytes:
    """Real rows with fuzzed cells, written with a drawn delimiter and encoding, sometimes
    cut short or with a few bytes overwritten."""
    records = draw(requests(rows, names))
    frame = pd.DataFrame(records)
    for name in frame.columns:
        frame[name] = frame[name].map(lambda v: "" if v is None else str(json_ready(v)))
    if draw(st.booleans()):
        frame = frame.drop(columns=draw(st.sampled_from(list(frame.columns))))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator=draw(st.sampled_from(
        ["\n", "\r\n", "\r"]))).writerows([list(frame.columns), *frame.to_numpy().tolist()])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    body = text.getvalue().encode(encoding, errors="replace")
    edit = draw(st.sampled_from(["none", "none", "cut", "overwrite"]))
    if edit == "cut":
        body = body[:draw(st.integers(1, len(body)))]
    elif edit == "overwrite":
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at + 8:]
    return body


def _csv_property(client: TestClient, contract: Contract, rows: list[dict[str, Any]]) -> Any:
    @given(body=csv_uploads(rows, contract.feature_names))
    def csv_answers_as_the_reference(body: bytes) -> None:
        _upload_answer(client, contract, body, "text/csv")

    return csv_answers_as_the_reference


def test_csv_upload_answers_as_the_reference(client: TestClient, contract: Contract,
                                             rows: list[dict[str, Any]]) -> None:
    UPLOADS(_csv_property(client, contract, rows))()


def test_carriage_return_line_endings_are_read(client: TestClient,
                                               telco_rows: pd.DataFrame) -> None:
    """An upload whose lines end in a lone "\r" was a 400 ("new-line character seen in
    unquoted field", from the header check) though pandas reads it."""
    body = telco_rows.head(20).to_csv(index=False, lineterminator="\r").encode()
    answer = _post(client, "/v1/predict/batch", body, "text/csv")
    assert answer.status_code == 200, answer.text[:2000]
    assert len(answer.text.strip().splitlines()) == 21  # the header and a row each


def test_integers_beyond_64_bits_in_an_upload_are_answered_and_logged(
        run_a: Path, tmp_path: Path, telco_rows: pd.DataFrame) -> None:
    """pandas reads digits beyond 64 bits as Python ints; the prediction log's JSON encoder
    (orjson) refused them, which stopped the log writer: that request and every later one
    went unlogged, and the server's shutdown raised."""
    rows = telco_rows.head(3).astype({"tenure": object})
    rows.loc[0, "tenure"] = 10**30  # a warning (out of range): answered and logged
    rows.loc[1, "tenure"] = -(10**400)
    db = tmp_path / "log.db"
    with TestClient(create_app(str(run_a), database_url=f"sqlite:///{db}")) as client:
        answer = _post(client, "/v1/predict/batch", _csv_bytes(rows), "text/csv")
        assert answer.status_code == 200, answer.text[:2000]
        assert int(answer.headers["x-contract-warnings"]) == 2, answer.headers
        assert len(answer.text.splitlines()) == 4, answer.text
        assert client.post("/v1/predict", json=rows.iloc[2].to_dict()).status_code == 200
    with sqlite3.connect(db) as conn:
        logged = conn.execute("select inputs from predictions order by ts, row").fetchall()
    assert len(logged) == 4 and str(10**30) in logged[0][0]


def test_a_parquet_upload_with_text_that_is_not_utf8_is_a_400(client: TestClient) -> None:
    """Bytes overwritten inside a Parquet string column: pandas read the file, then failed
    converting the column (ArrowException) while the route checked it: a 500."""
    answer = _post(client, "/v1/predict/batch", damaged_parquet(), "application/x-parquet")
    assert answer.status_code == 400, answer.text[:2000]
    assert "Could not read the upload as Parquet" in answer.json()["detail"]
    assert "UTF8" in answer.json()["detail"]


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


#: Columns of Arrow types a Parquet file may hold, whatever the contract says.
ARROW_COLUMNS = st.sampled_from([
    pa.array([[1, 2], None, []] * 4, type=pa.list_(pa.int64())),
    pa.array([{"a": 1}, None, {"a": 2}] * 4, type=pa.struct([("a", pa.int64())])),
    pa.array([b"\x00\xff", b"yes", None] * 4, type=pa.binary()),
    pa.array([1, None, 2**62] * 4, type=pa.int64()),
    pa.array([0.5, float("nan"), float("inf")] * 4, type=pa.float64()),
    pa.array([True, None, False] * 4, type=pa.bool_()),
    pa.array(["Yes", "Zürich", None] * 4, type=pa.string()),
    pa.array([0, 10**12, None] * 4, type=pa.timestamp("ms", tz="UTC")),
    pa.array([0, 20000, None] * 4, type=pa.date32()),
    pa.array([None] * 12, type=pa.null()),
    pa.array(["No", "Yes", "No"] * 4, type=pa.dictionary(pa.int8(), pa.string())),
])


@st.composite
def parquet_uploads(draw: st.DrawFn, rows: list[dict[str, Any]], names: list[str]) -> bytes:
    """Twelve real rows with up to three columns replaced by a column of another Arrow
    type; sometimes the file is cut short or has a few bytes overwritten."""
    table = pa.Table.from_pylist(rows[:12])
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        table = table.set_column(table.schema.get_field_index(name), name,
                                 draw(ARROW_COLUMNS))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    body = sink.getvalue()
    edit = draw(st.sampled_from(["none", "none", "cut", "overwrite"]))
    if edit == "cut":
        body = body[:draw(st.integers(4, len(body)))]
    elif edit == "overwrite":
        at = draw(st.integers(4, len(body) - 1))
        body = body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at + 8:]
    return body


def _parquet_property(client: TestClient, contract: Contract,
                      rows: list[dict[str, Any]]) -> Any:
    @given(body=parquet_uploads(rows, contract.feature_names))
    def parquet_answers_as_the_reference(body: bytes) -> None:
        _upload_answer(client, contract, body, "application/vnd.apache.parquet")

    return parquet_answers_as_the_reference


def test_parquet_upload_answers_as_the_reference(client: TestClient, contract: Contract,
                                                 rows: list[dict[str, Any]]) -> None:
    UPLOADS(_parquet_property(client, contract, rows))()


@pytest.mark.deep
def test_uploads_answer_as_the_reference_deeply(client: TestClient, contract: Contract,
                                                rows: list[dict[str, Any]]) -> None:
    DEEP(_csv_property(client, contract, rows))()
    DEEP(_parquet_property(client, contract, rows))()


# -- a real server ------------------------------------------------------------------------


def test_the_worst_bodies_against_a_real_server(run_a: Path, tmp_path: Path,
                                                rows: list[dict[str, Any]]) -> None:
    """Deep nesting, non-JSON numbers, broken UTF-8, numbers beyond 64 bits and beyond a
    double, a NUL-laden CSV, a Parquet file cut short: uvicorn answers each promptly, with
    a 4xx naming the fault or (a huge but valid number) a prediction and a range warning."""
    # An app of its own: the module's app runs on the TestClient's event loop, and its log
    # writer's queue cannot be shared with uvicorn's.
    app = create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'log.db'}")
    row = orjson.dumps(rows[0]).decode()

    def tenure(text: str) -> bytes:
        return row.replace('"tenure":', f'"tenure":{text},"x":').encode()

    cases = [
        # Refused before parsing (413, more objects than a request may hold) or by it.
        ("/v1/predict", "application/json", b"[" * 100_000 + b"]" * 100_000, (400, 413)),
        ("/v1/predict", "application/json", tenure("NaN"), 400),
        ("/v1/predict", "application/json", tenure("1e400"), 400),
        ("/v1/predict", "application/json", b'{"tenure": "\xff\xfe"}', 400),
        ("/v1/predict", "application/json", tenure("1" + "0" * 30), 200),
        ("/v1/predict", "application/json", tenure('"' + "9" * 400 + '"'), 200),
        ("/v1/predict/batch", "text/csv", b"tenure,contract\n\x00\x00,\x00\n1,\x00\n", 422),
        ("/v1/predict/batch", "application/vnd.apache.parquet", b"PAR1" + b"\x00" * 64, 400),
    ]
    with LiveServer(app) as server, httpx.Client(base_url=server.url,
                                                 timeout=ANSWER_WITHIN_S) as http:
        for path, content_type, body, status in cases:
            answer = http.post(path, content=body, headers={"content-type": content_type})
            assert answer.status_code in (status if isinstance(status, tuple) else (status,)), (
                body[:80], answer.text[:500])
            if status == 200:
                assert {w["rule"] for w in answer.json()["warnings"]} >= {"out_of_range"}
            else:
                assert answer.json()["detail"], body[:80]
        assert http.get("/readyz").status_code == 200
