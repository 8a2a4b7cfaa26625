"""Helpers of the server tests: a live uvicorn server in a thread, JSON-ready records."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_process(args: list[str], cwd: Path, env: dict[str, str] | None = None,
                  timeout: float = 180) -> Iterator[tuple[subprocess.Popen, str]]:
    """``mlwright serve ARGS --port P`` in a new process, yielded once /readyz says ready;
    killed on the way out if the test has not stopped it (a failed assertion)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from mlwright.cli import main; main()", "serve", *args,
         "--port", str(port)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.poll() is not None and \
                    process.stdout else b""
                raise AssertionError(f"the server did not start: {output[-3000:]!r}")
            time.sleep(0.1)
        yield process, url
    finally:
        if process.poll() is None:  # its whole session: --workers children too
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


class LiveServer:
    """A uvicorn server for ``app`` in a thread; ``stop()`` runs the graceful shutdown."""

    def __init__(self, app: Any, http: Any = "auto") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            http=http))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)

    def __exit__(self, *_: Any) -> None:
        self.stop()


def api_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every API route, through included routers (FastAPI >= 0.165 keeps
    an included router as one entry of ``app.routes``; older versions copy its routes)."""
    from fastapi.routing import APIRoute

    out = []
    for route in app.routes:
        inner = getattr(route, "original_router", None)
        for r in inner.routes if inner is not None else [route]:
            if isinstance(r, APIRoute):
                out += [(method, r.path) for method in r.methods]
    return out


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records (missing values as None)."""
    return df.astype(object).where(df.notna(), None).to_dict("records")
