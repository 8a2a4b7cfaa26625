"""Helpers shared by the registry tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import socket
from pathlib import Path


def sqlite_uri(folder: Path) -> str:
    return f"sqlite:///{(folder / 'mlflow.db').resolve().as_posix()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
