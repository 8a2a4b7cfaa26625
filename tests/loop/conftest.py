"""A small project on real telco_churn slices: a registered champion, a data source, and
live traffic written to the prediction log (with feedback) exactly as the server writes it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mlwright as mw
from mlwright.config import DataConfig, LoopConfig, ProjectConfig, ServeConfig, StoreConfig
from mlwright.datasets import load_suite

TARGET = "churn"


@pytest.fixture(scope="session")
def churn() -> dict[str, pd.DataFrame]:
    df = load_suite("telco_churn", nrows=2600, seed=1)
    return {"champ": df.iloc[:300].reset_index(drop=True),
            "source": df.iloc[300:2000].reset_index(drop=True),
            "live": df.iloc[2000:].reset_index(drop=True)}


@pytest.fixture(scope="session")
def weak(churn: dict[str, pd.DataFrame]) -> Any:
    """A deliberately weak champion: 300 rows without the strongest columns (as if trained
    before they were collected), linear only, one trial."""
    champ = churn["champ"].drop(columns=["contract", "tenure", "total_charges",
                                         "internet_service", "payment_method",
                                         "online_security", "tech_support"])
    return mw.train(champ, TARGET, time_budget=20, families=["linear"], n_trials=1)


@pytest.fixture(scope="session")
def good(churn: dict[str, pd.DataFrame]) -> Any:
    """A good champion: the whole source table."""
    return mw.train(churn["source"], TARGET, time_budget=8, families=["lightgbm", "linear"],
                    seed=0)


def log_traffic(config: ProjectConfig, model: Any, version: str, rows: pd.DataFrame, *,
                role: str = "champion", labels: bool = True, request_ids: list[str] | None
                = None, ts: float | None = None) -> list[str]:
    """Score ``rows`` with ``model`` and write them (and their true labels as feedback) to
    the prediction log with the server's own entry classes; one request per row."""
    from mlwright.serve.logwriter import FeedbackEntry, PredictionEntry
    from mlwright.store import feedback, open_database, predictions

    engine = open_database(config.store.database_url())
    X = rows.drop(columns=[TARGET])
    proba = model.predict_proba(X)
    pred = model.predict(X)
    ids = request_ids or [uuid.uuid4().hex for _ in range(len(rows))]
    now = time.time() if ts is None else ts
    pred_rows: list[dict[str, Any]] = []
    fb_items: list[dict[str, Any]] = []
    records = X.astype(object).where(X.notna(), None).to_dict(orient="records")
    for i, record in enumerate(records):
        entry = PredictionEntry(request_id=ids[i], ts=now + i * 1e-3, model=config.name,
                                version=version, role=role, records=[record], keys=None,
                                predictions=[pred[i]], proba=[list(map(float, proba[i]))],
                                latency_ms=1.0, status=200)
        pred_rows.extend(entry.rows())
        if labels:
            fb_items.append({"request_id": ids[i], "row": 0, "key": None,
                             "label": rows[TARGET].iloc[i], "ts": now + 1})
    with engine.begin() as conn:
        conn.execute(predictions.insert(), pred_rows)
        if fb_items:
            conn.execute(feedback.insert(), FeedbackEntry(fb_items).rows())
    return ids


@pytest.fixture
def make_project(tmp_path: Path, churn: dict[str, pd.DataFrame]
                 ) -> Callable[..., ProjectConfig]:
    def make(champion: Any, *, traffic: bool = True, **loop: Any) -> ProjectConfig:
        from mlwright.registry.core import Registry

        source = tmp_path / "churn.csv"
        churn["source"].to_csv(source, index=False)
        shadow = loop.pop("shadow", False)
        settings: dict[str, Any] = {"triggers": ["webhook"], "min_feedback": 100,
                                    "bootstrap": 300, "rollback_window": 100}
        settings.update(loop)
        config = ProjectConfig(name="churn", data=DataConfig(source=str(source), target=TARGET),
                               store=StoreConfig(root=tmp_path / ".mlwright"),
                               loop=LoopConfig(**settings), serve=ServeConfig(shadow=shadow))
        registry = Registry(config.store.resolved_tracking_uri(),
                            database_url=config.store.database_url())
        folder = champion.save(tmp_path / "champion-run")
        info = registry.register(champion, folder, name="churn", alias="champion")
        if traffic:
            log_traffic(config, champion, info.version, churn["live"])
        return config

    return make


@pytest.fixture(scope="session")
def traffic() -> Callable[..., list[str]]:
    """``log_traffic`` as a fixture (test modules cannot import this conftest)."""
    return log_traffic
