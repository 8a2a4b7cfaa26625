"""How many records break the contract is counted exactly, past the 50 errors a response
lists (issue 14 point 6), and an upload's own faults are named as such (point 12): a
repeated header column, a Parquet content type with a CSV body."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlwright.registry.model import LoadedModel
from mlwright.serve import create_app
from mlwright.serve.records import RecordValidator


@pytest.fixture(scope="module")
def client(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("db") / "log.db"
    with TestClient(create_app(str(run_a), database_url=f"sqlite:///{db}")) as c:
        yield c


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_validator_counts_every_failed_record_past_the_cap(run_a: Path) -> None:
    validator = RecordValidator(LoadedModel.from_folder(run_a).contract)
    for batch in ([{}] * 100, [{}] * 5, [[1, 2]] * 70):  # column-wise, row-wise, not objects
        clean, _, errors = validator.validate(list(batch))
        assert clean == [] and errors.records == len(batch)
        assert len(errors) == min(50, len(errors)) <= 50


def test_predict_counts_every_empty_record(client: TestClient) -> None:
    answer = client.post("/v1/predict", json=[{}] * 100)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("100 of 100 records break the data contract")


def test_batch_counts_every_row_missing_most_columns(client: TestClient,
                                                     telco_rows: pd.DataFrame) -> None:
    kept = telco_rows.iloc[:100, :2]  # 2 of the 19 feature columns
    answer = client.post("/v1/predict/batch", content=_csv(kept),
                         headers={"content-type": "text/csv"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("100 of 100 rows break the data contract")
    mixed = telco_rows.iloc[:200].astype({"tenure": object})
    mixed.loc[mixed.index[::2], "tenure"] = "soon"  # every other row bad: 100 of 200
    answer = client.post("/v1/predict/batch", content=_csv(mixed),
                         headers={"content-type": "text/csv"})
    assert answer.json()["detail"].startswith("100 of 200 rows break the data contract")


def test_batch_names_a_repeated_header_column(client: TestClient,
                                              telco_rows: pd.DataFrame) -> None:
    frame = telco_rows.iloc[:200]
    text = _csv(frame).decode().split("\n", 1)
    header = text[0].split(",")
    header[1] = header[0]  # "gender,gender,..." (pandas would read gender and gender.1)
    body = (",".join(header) + "\n" + text[1]).encode()
    answer = client.post("/v1/predict/batch", content=body, headers={"content-type": "text/csv"})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert f"repeats the column {header[0]!r}" in detail and "200 of 200 rows" in detail
    assert ".1" not in detail


def test_parquet_content_type_with_a_csv_body_says_it_is_not_parquet(
        client: TestClient, telco_rows: pd.DataFrame) -> None:
    answer = client.post("/v1/predict/batch", content=_csv(telco_rows.iloc[:5]),
                         headers={"content-type": "application/vnd.apache.parquet"})
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert "not Parquet" in detail and "text/csv" in detail and "as CSV" not in detail
    buffer = io.BytesIO()
    telco_rows.iloc[:5].to_parquet(buffer)
    good = client.post("/v1/predict/batch", content=buffer.getvalue(),
                       headers={"content-type": "application/vnd.apache.parquet"})
    assert good.status_code == 200
