"""Labelled rows from the prediction log joined with feedback (the loop's recent data).

The join is the monitor's (:func:`mlwright.store.labelled_records`: by request id and
record index, by request id alone for record 0, or by the caller's own key; a record
labelled twice keeps its latest label). The result has one row per scored record that got
a label: the record's inputs as columns, the label, and ``_mw_*`` columns saying when, by
which version and in which role it was scored, and what it predicted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import select

from mlwright.store import WindowSpec, labelled_records, open_database, parse_window, window_filter
from mlwright.store import predictions as p

__all__ = ["META", "labelled_rows", "to_training_frame"]

META = ["_mw_id", "_mw_ts", "_mw_version", "_mw_role", "_mw_request_id", "_mw_row",
        "_mw_prediction", "_mw_proba", "_mw_feedback_id"]


def labelled_rows(database_url: str, model: str, *, label: str = "__label__",
                  roles: Sequence[str] = ("champion", "challenger"),
                  version: str | None = None, since: float | None = None,
                  after_id: int | None = None, limit: int | None = None,
                  window: str | int | WindowSpec | None = None) -> pd.DataFrame:
    """Records of ``model`` scored with status 200 that have feedback, oldest first.

    Args:
        roles: which log rows count (``shadow`` rows are the challenger's silent answers).
        version: only rows answered by this model version.
        since: only rows logged at or after this unix time.
        after_id: only log rows with a larger id (a watermark).
        limit: keep the most recent ``limit`` rows.
        window: only the records of this monitoring window (``"5000"``, ``"1d"``), chosen
            among ``roles`` and ``version`` exactly as the monitor chooses its window.
    """
    engine = open_database(database_url)
    where: list[Any] | None
    if window is not None:
        where = window_filter(engine, model, parse_window(window), version=version,
                              roles=tuple(roles))
    else:
        where = [p.c.model == model, p.c.role.in_(list(roles))]
        if version is not None:
            where.append(p.c.version == str(version))
    rows: list[tuple[Any, ...]] = []
    if where is not None:  # None: a window of a log without records
        if since is not None:
            where.append(p.c.ts >= since)
        if after_id is not None:
            where.append(p.c.id > after_id)
        with engine.connect() as conn:
            found = labelled_records(conn, where, (
                p.c.ts.label("pts"), p.c.version.label("version"), p.c.role.label("role"),
                p.c.request_id.label("request_id"), p.c.row.label("row"),
                p.c.inputs.label("inputs"), p.c.prediction.label("prediction"),
                p.c.proba.label("proba")))
            if found is not None:
                c = found.c
                rows = [tuple(r) for r in conn.execute(select(
                    c.pid, c.pts, c.version, c.role, c.request_id, c.row, c.inputs,
                    c.prediction, c.proba, c.label, c.fid).order_by(c.pid))]
    ordered = rows[-limit:] if limit is not None else rows
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
