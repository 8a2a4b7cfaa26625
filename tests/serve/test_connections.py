"""Slow clients cannot hold connections (issue 16): a request head (request line and
headers) not received within serve.header_timeout_s of its first byte, or of the
connection, gets 408 and the connection is closed; a head that arrived in time is not cut
while its body or its answer takes longer; a client that leaves during its body costs no
traceback."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.config import ServeConfig
from mlwright.serve import create_app
from mlwright.serve.app import http_protocol

TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def port(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    config = ServeConfig(header_timeout_s=TIMEOUT_S)
    db = tmp_path_factory.mktemp("connections") / "log.db"
    app = create_app(str(run_a), config=config, database_url=f"sqlite:///{db}")
    with LiveServer(app, http=http_protocol(config)) as server:
        yield server.port


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (20 s at most)."""
    sock.settimeout(20)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_head_sent_a_byte_at_a_time_gets_408_and_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        try:
            for _ in range(int(20 / 0.2)):  # far past the limit, if nothing stops it
                sock.sendall(b"a")
                time.sleep(0.2)
        except OSError:  # closed by the server
            pass
        answer = _until_closed(sock)
    assert time.monotonic() - started < 19
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"serve.header_timeout_s" in answer


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _until_closed(sock) == b""


def test_a_head_in_time_is_not_cut_while_its_body_is_slow(port: int,
                                                          telco_rows: pd.DataFrame) -> None:
    body = orjson.dumps(records(telco_rows.head(1))[0])
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body[:10])
        time.sleep(4 * TIMEOUT_S + 1.0)  # past the head limit and a sweep
        sock.sendall(body[10:])
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def test_a_client_that_leaves_during_its_body_is_counted_not_logged_as_an_error(
        port: int, caplog: pytest.LogCaptureFixture) -> None:
    head = (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n")
    with caplog.at_level(logging.INFO, logger="mlwright"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head + b'[{"tenure": 1')
            time.sleep(0.3)  # the request is in the app, reading its body
        line = 'mlwright_errors_total{endpoint="/v1/predict",kind="client_gone"} 1.0'
        deadline = time.monotonic() + 20
        while line not in (text := httpx.get(f"http://127.0.0.1:{port}/metrics").text):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
