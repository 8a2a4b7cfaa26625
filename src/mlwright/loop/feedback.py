"""Labelled rows from the prediction log joined with feedback (the loop's recent data).

Feedback names a prediction by request id (and record index, default 0) or by the caller's
own key. The result has one row per scored record that got a label: the record's inputs as
columns, the label, and ``_mw_*`` columns saying when, by which version and in which role it
was scored, and what it predicted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import and_, select

__all__ = ["META", "labelled_rows", "to_training_frame"]

META = ["_mw_id", "_mw_ts", "_mw_version", "_mw_role", "_mw_request_id", "_mw_row",
        "_mw_prediction", "_mw_proba", "_mw_feedback_id"]


def labelled_rows(database_url: str, model: str, *, label: str = "__label__",
                  roles: Sequence[str] = ("champion", "challenger"),
                  version: str | None = None, since: float | None = None,
                  after_id: int | None = None, limit: int | None = None) -> pd.DataFrame:
    """Records of ``model`` scored with status 200 that have feedback, oldest first.

    Args:
        roles: which log rows count (``shadow`` rows are the challenger's silent answers).
        version: only rows answered by this model version.
        since: only rows logged at or after this unix time.
        after_id: only log rows with a larger id (a watermark).
        limit: keep the most recent ``limit`` rows.
    """
    from mlwright._db import open_database
    from mlwright.serve.logstore import feedback, metadata, predictions

    engine = open_database(database_url, metadata)
    p, f = predictions, feedback
    cols = [p.c.id, p.c.ts, p.c.version, p.c.role, p.c.request_id, p.c.row, p.c.inputs,
            p.c.prediction, p.c.proba, f.c.label, f.c.id.label("fid")]
    where = [p.c.model == model, p.c.status == 200, p.c.role.in_(list(roles))]
    if version is not None:
        where.append(p.c.version == str(version))
    if since is not None:
        where.append(p.c.ts >= since)
    if after_id is not None:
        where.append(p.c.id > after_id)
    # Three joins, each on an index: by (request_id, row); by request_id alone for feedback
    # written without a row (row 0, as the server writes it); by key. A coalesce(row, 0)
    # in one join made SQLite scan every feedback row of a request per record.
    by_row = select(*cols).select_from(p.join(f, and_(
        f.c.request_id == p.c.request_id, f.c.row == p.c.row))).where(*where)
    by_request = select(*cols).select_from(p.join(f, and_(
        f.c.request_id == p.c.request_id, f.c.row.is_(None), p.c.row == 0))).where(*where)
    by_key = select(*cols).select_from(p.join(f, and_(
        f.c.key.is_not(None), f.c.key == p.c.key))).where(*where)
    with engine.connect() as conn:
        rows = [tuple(r) for query in (by_row, by_request, by_key)
                for r in conn.execute(query)]
    # A record labelled twice keeps its latest feedback.
    latest: dict[int, tuple[Any, ...]] = {}
    for r in rows:
        if r[0] not in latest or r[10] > latest[r[0]][10]:
            latest[r[0]] = r
    ordered = sorted(latest.values(), key=lambda r: r[0])
    if limit is not None:
        ordered = ordered[-limit:]
    records = [json.loads(r[6]) for r in ordered]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame[label] = [json.loads(r[9]) for r in ordered]
    meta = {"_mw_id": [r[0] for r in ordered], "_mw_ts": [r[1] for r in ordered],
            "_mw_version": [r[2] for r in ordered], "_mw_role": [r[3] for r in ordered],
            "_mw_request_id": [r[4] for r in ordered], "_mw_row": [r[5] for r in ordered],
            "_mw_prediction": [None if r[7] is None else json.loads(r[7]) for r in ordered],
            "_mw_proba": [None if r[8] is None else json.loads(r[8]) for r in ordered],
            "_mw_feedback_id": [r[10] for r in ordered]}
    for key, values in meta.items():
        frame[key] = values
    return frame.reset_index(drop=True)


def to_training_frame(labelled: pd.DataFrame, target: str, *, label: str = "__label__",
                      columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Inputs + label renamed to ``target``, meta columns dropped, in ``columns``' order."""
    frame = labelled.drop(columns=[c for c in META if c in labelled.columns])
    frame = frame.rename(columns={label: target})
    if columns is not None:
        for col in columns:
            if col not in frame.columns:
                frame[col] = pd.NA  # a field the server imputed or the caller left out
        frame = frame[list(columns)]
    return frame
