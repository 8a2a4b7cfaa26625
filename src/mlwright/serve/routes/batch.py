"""``POST /v1/predict/batch``: a CSV or Parquet upload in, a CSV of predictions streamed out.

Reading, validating and predicting run on the server's ``heavy`` thread (one at a time), in
chunks of ``BATCH_CHUNK`` rows, so a large upload never stalls the event loop nor the
micro-batcher that answers single predictions.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from mlwright.serve.logwriter import PredictionEntry
from mlwright.serve.records import Errors, Issue
from mlwright.serve.routes._common import (
    error_body,
    issue_map,
    json_response,
    log_rejected,
    request_id,
    responses,
    server_of,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BATCH_CHUNK", "router"]

BATCH_CHUNK = 10_000
_CONTENT_TYPES = ("text/csv", "application/csv", "application/vnd.apache.parquet",
                  "application/x-parquet", "application/octet-stream", "")

_PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")

router = APIRouter()


def _repeated_names(body: bytes, encoding: str, delimiter: str) -> list[str]:
    """Names the CSV header holds more than once, in header order."""
    import csv

    text = body[:65536].decode(encoding, errors="replace").lstrip("\ufeff")
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    seen: set[str] = set()
    repeated: list[str] = []
    for name in header:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


@router.post("/v1/predict/batch", summary="Predict for an uploaded CSV or Parquet table",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}},
                 "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                               "format": "binary"}}}}},
             responses=responses({"text/csv": {"schema": {"type": "string"}}},
                                 400, 413, 415, 422, 503))
async def predict_batch(request: Request) -> Response:
    import pandas as pd

    server = server_of(request)
    metrics = server.metrics
    started = time.perf_counter()
    ts = time.time()
    rid = request_id(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return json_response(error_body("The upload is empty; send a CSV or Parquet "
                                        "table as the request body."), 400)
    loop = asyncio.get_running_loop()

    parquet = body[:4] == b"PAR1"
    repeated: list[str] = []

    def read() -> pd.DataFrame:
        if parquet:
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(body))
            # Text that is not UTF-8 (a damaged file) fails here, as a 400, not in to_pandas.
            table.validate(full=True)
            return table.to_pandas()
        from mlwright.data.sources import sniff_csv

        encoding, delimiter = sniff_csv(body)  # ';' from a European Excel, tabs...
        repeated.extend(_repeated_names(body, encoding, delimiter))
        return pd.read_csv(io.BytesIO(body), sep=delimiter, encoding=encoding)

    if content_type not in _CONTENT_TYPES:
        return json_response(error_body(
            f"Unsupported content type {content_type!r}: send text/csv or "
            f"application/vnd.apache.parquet."), 415)
    if content_type in _PARQUET_TYPES and not parquet:
        metrics.errors.labels("/v1/predict/batch", "bad_request").inc()
        return json_response(error_body(
            f"The content type is {content_type} but the body is not Parquet (a Parquet "
            f"file starts with the bytes PAR1). Send a CSV table as text/csv, or the Parquet "
            f"file's own bytes."), 400)
    try:
        frame = await loop.run_in_executor(server.heavy, read)
    except Exception as exc:  # any parser error is the upload's fault
        metrics.errors.labels("/v1/predict/batch", "bad_request").inc()
        return json_response(error_body(f"Could not read the upload as "
                                        f"{'Parquet' if parquet else 'CSV'}: "
                                        f"{str(exc)[:300]}"), 400)
    if frame.empty:
        return json_response(error_body("The upload holds no rows."), 422)
    limit = server.config.max_upload_rows
    if len(frame) > limit:
        metrics.errors.labels("/v1/predict/batch", "too_large").inc()
        return json_response(error_body(
            f"The upload holds {len(frame):,} rows; the limit is {limit:,} per upload "
            f"(serve.max_upload_rows). Split the table into uploads of at most {limit:,} "
            f"rows."), 413, {"x-request-id": rid})
    if repeated:
        # pandas would read them as x and x.1: an "extra" column and, often, a missing one.
        metrics.errors.labels("/v1/predict/batch", "contract").inc()
        return json_response(error_body(
            f"The upload's header repeats the column{'s' if len(repeated) > 1 else ''} "
            f"{', '.join(map(repr, repeated))}: each column must appear once, so none of its "
            f"{len(frame)} rows can be checked against the data contract ({len(frame)} of "
            f"{len(frame)} rows refused). Rename or drop the repeated column."), 422,
            {"x-request-id": rid})
    frame.columns = [str(c) for c in frame.columns]

    def check() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Issue], Errors]:
        objects = frame.astype(object).where(frame.notna(), None)
        records = objects.to_dict("records")
        return records, *server.validator.validate(records)

    records, clean, warnings, errors = await loop.run_in_executor(server.heavy, check)
    if errors:
        metrics.errors.labels("/v1/predict/batch", "contract").inc()
        for start in range(0, len(records), BATCH_CHUNK):
            await log_rejected(server, rid, ts, records[start:start + BATCH_CHUNK], None,
                               errors, started, first_row=start)
        return json_response(error_body(
            f"{errors.describe(len(records), 'rows')}; 'record' is the row number (from 0).",
            errors), 422, {"x-request-id": rid})
    active = server.champion.active
    if active is None:
        return json_response(error_body("No champion model is loaded."), 503)
    by_row = issue_map(warnings) or {}

    async def stream() -> AsyncIterator[bytes]:
        classes = active.loaded.classes
        columns = ["row", "prediction"] + ([f"proba_{c}" for c in classes]
                                           if classes else [])
        yield (",".join(columns) + "\n").encode()
        for start in range(0, len(clean), BATCH_CHUNK):
            chunk = clean[start:start + BATCH_CHUNK]
            preds, proba = await loop.run_in_executor(server.heavy, active.predict, chunk)
            out = pd.DataFrame({"row": range(start, start + len(chunk)),
                                "prediction": preds})
            if proba is not None and classes:
                for j, c in enumerate(classes):
                    out[f"proba_{c}"] = [p[j] for p in proba]
            metrics.predictions.labels(active.name, active.version, "champion").inc(
                len(chunk))
            issues = {i - start: by_row[i] for i in range(start, start + len(chunk))
                      if i in by_row}
            # Logged before it is sent: a row the client got is in the log, even when a
            # shutdown's grace period ends the stream after it.
            await server.log.put(PredictionEntry(
                rid, ts, active.name, active.version, "champion", chunk, None,
                preds, proba, (time.perf_counter() - started) * 1000, 200,
                issues or None, first_row=start))
            yield out.to_csv(index=False, header=False).encode()

    # The warnings (unknown categories, out of range) travel in headers: the body is
    # the prediction table. Each one is in the prediction log, by row.
    headers = {"x-request-id": rid, "x-contract-warnings": str(len(warnings))}
    if warnings:
        headers["x-contract-warning-sample"] = "; ".join(
            f"row {w.record} {w.field}: {w.message}" for w in warnings[:3]
        ).encode("ascii", "replace").decode()[:1000]
    return StreamingResponse(stream(), media_type="text/csv", headers=headers)
