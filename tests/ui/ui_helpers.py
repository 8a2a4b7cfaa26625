"""What the dashboard's tests share (conftest.py holds the fixtures): the story's handle,
a watched browser page, the traffic sender, where screenshots go."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from serve_helpers import records

TARGET = "churn"
#: Screenshots of the browser tests (ignored by git; kept for looking at).
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"


@dataclass
class Story:
    url: str
    config: Any
    database_url: str
    tracking_uri: str
    server: Any
    versions_before_retrain: list[str]
    retrain_action: str


def send(client: httpx.Client, frame: pd.DataFrame, *, batch: int, pause: float,
          bad_every: int) -> list[tuple[str, pd.DataFrame]]:
    sent = []
    for i, start in enumerate(range(0, len(frame), batch)):
        part = frame.iloc[start:start + batch]
        rows = records(part.drop(columns=[TARGET]))
        if bad_every and i % bad_every == bad_every - 1:
            rows[0]["tenure"] = "not a number"  # refused: the request answers 422
            assert client.post("/v1/predict", json={"records": rows}).status_code == 422
        else:
            answer = client.post("/v1/predict", json={"records": rows})
            assert answer.status_code == 200, answer.text
            sent.append((answer.json()["request_id"], part))
        time.sleep(pause)
    return sent


@dataclass
class Watched:
    """A Chromium page that may reach only the server: every other request is aborted and
    kept in ``left``; console errors and uncaught exceptions go to ``errors``."""

    page: Any
    errors: list[str]
    left: list[str]
    requests: list[str]
