"""Helpers of the server tests: a live uvicorn server in a thread, JSON-ready records."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pandas as pd
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A uvicorn server for ``app`` in a thread; ``stop()`` runs the graceful shutdown."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False))
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


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records (missing values as None)."""
    return df.astype(object).where(df.notna(), None).to_dict("records")
