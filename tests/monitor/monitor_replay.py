"""Writing prediction-log rows as the server does (see conftest.py)."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import orjson
import pandas as pd


def _json_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):  # a date reaches the server as ISO 8601 text
        return None if pd.isna(v) else v.isoformat()
    return v


def log_rows(engine: Any, trained: Any, frame: pd.DataFrame, *, model: str = "telco",
             version: str = "1", t0: float = 1.7e9, step: float = 1.0, batch: int = 1,
             with_keys: bool = False) -> list[tuple[str, int]]:
    """Score ``frame`` with the real model and log it; (request_id, row) of every record."""
    from mlwright.store import predictions

    X = frame[trained.features]
    proba = trained.model.predict_proba(X)
    labels = trained.model.classes_[proba.argmax(axis=1)]
    records = X.to_dict(orient="records")
    rows, ids = [], []
    for start in range(0, len(frame), batch):
        request_id = uuid.uuid4().hex
        for k in range(start, min(start + batch, len(frame))):
            ids.append((request_id, k - start))
            rows.append({
                # the records of one request share its arrival time, as the server logs
                "request_id": request_id, "row": k - start, "ts": t0 + start * step,
                "model": model, "version": version, "role": "champion",
                "key": f"cust-{k}" if with_keys else None,
                "inputs": orjson.dumps({c: _json_value(v) for c, v in records[k].items()}
                                       ).decode(),
                "prediction": orjson.dumps(_json_value(labels[k])).decode(),
                "proba": orjson.dumps([float(p) for p in proba[k]]).decode(),
                "latency_ms": 2.0 + (k % 7), "status": 200, "violations": "[]"})
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    return ids


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Live:
    """A real uvicorn server for ``app`` on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))

    def __enter__(self) -> Live:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(60)


class Receiver:
    """A loopback HTTP server (http.server in a thread) that keeps the JSON POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        import http.server
        import threading

        received: list[Any] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(orjson.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def records_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records (missing values as None)."""
    return [{c: _json_value(v) for c, v in r.items()} for r in frame.to_dict("records")]
