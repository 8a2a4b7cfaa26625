"""The one join of logged predictions with their feedback labels.

Feedback names a record by request id and record index (a missing index means record 0)
or by the caller's own key. A record labelled more than once keeps its latest label (the
latest ``ts``; the latest id among equal times). Only records answered 200 count. The
monitor's live performance and the loop's labelled rows both read through
:func:`labelled_records`, so on the same window they see the same labelled records.
Feedback that names no answered record is never labelled; :func:`unmatched_reasons` says,
when the server records feedback, which items name none (its answer reports them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select, tuple_, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Subquery

from mlwright.store.schema import feedback as f
from mlwright.store.schema import predictions as p

__all__ = ["labelled_records", "unmatched_reasons"]


def labelled_records(conn: Connection, where: Sequence[Any],
                     columns: Sequence[ColumnElement[Any]] = ()) -> Subquery | None:
    """One row per record of ``predictions`` that ``where`` selects, was answered 200 and
    has feedback: ``pid`` (the record's id), ``fid`` / ``fts`` / ``label`` (its latest
    feedback: id, time, JSON label) and ``columns`` (expressions over the predictions
    table, each given a ``.label()``). None when no feedback at all could match.

    Three joins, each on an index: by (request_id, row); by request id alone for feedback
    written without a row (record 0); by key. Joining on ``coalesce(f.row, 0) = p.row``
    would stop the database from seeking the (request_id, row) index: every record of a
    20,000-row batch request would scan all of its request's feedback (quadratic, 30 s).
    """
    cols = (p.c.id.label("pid"), *columns, f.c.label.label("label"), f.c.ts.label("fts"),
            f.c.id.label("fid"))
    scored = [*where, p.c.status == 200]
    joins = [(f.c.request_id.is_not(None) & f.c.row.is_not(None),
              p.join(f, and_(f.c.request_id == p.c.request_id, f.c.row == p.c.row)), []),
             (f.c.request_id.is_not(None) & f.c.row.is_(None),
              p.join(f, and_(f.c.request_id == p.c.request_id, f.c.row.is_(None))),
              [p.c.row == 0]),
             (f.c.key.is_not(None), p.join(f, and_(f.c.key.is_not(None), f.c.key == p.c.key)),
              [])]
    # A join scans the whole window: skip a kind of feedback nobody sent.
    queries = [select(*cols).select_from(join).where(*scored, *extra)
               for sent, join, extra in joins
               if conn.execute(select(f.c.id).where(sent).limit(1)).first()]
    if not queries:
        return None
    both = (union_all(*queries) if len(queries) > 1 else queries[0]).subquery()
    ranked = select(both, func.row_number().over(
        partition_by=both.c.pid, order_by=(both.c.fts.desc(), both.c.fid.desc())
    ).label("nth")).subquery()
    return select(*(c for c in ranked.c if c.name != "nth")).where(
        ranked.c.nth == 1).subquery("labelled")


_CHUNK = 500  # values per IN list (SQLite's parameter limit is 32,766; plans stay small)


def unmatched_reasons(conn: Connection, items: Sequence[dict[str, Any]]) -> list[str | None]:
    """For each feedback item (``request_id`` + ``row``, or ``key``), None when it names a
    logged record answered 200 (the join above will label it), else why not. Two indexed
    IN queries per 500 items, not one query per item."""
    by_request = sorted({(i["request_id"], i.get("row") or 0) for i in items
                         if i.get("request_id") is not None})
    keys = sorted({i["key"] for i in items if i.get("key") is not None})
    status: dict[tuple[str, int], set[int]] = {}
    for start in range(0, len(by_request), _CHUNK):
        part = by_request[start:start + _CHUNK]
        for rid, row, code in conn.execute(select(p.c.request_id, p.c.row, p.c.status).where(
                tuple_(p.c.request_id, p.c.row).in_(part))):
            status.setdefault((rid, row), set()).add(code)
    known = {rid for rid, _ in status}
    if len(known) < len({rid for rid, _ in by_request}):  # a wrong row, or a wrong id?
        missing = sorted({rid for rid, _ in by_request} - known)
        for start in range(0, len(missing), _CHUNK):
            known.update(r for (r,) in conn.execute(select(p.c.request_id).where(
                p.c.request_id.in_(missing[start:start + _CHUNK])).distinct()))
    keyed: dict[str, set[int]] = {}
    for start in range(0, len(keys), _CHUNK):
        for key, code in conn.execute(select(p.c.key, p.c.status).where(
                p.c.key.in_(keys[start:start + _CHUNK])).distinct()):
            keyed.setdefault(key, set()).add(code)
    reasons: list[str | None] = []
    for item in items:
        why: list[str] = []
        if item.get("request_id") is not None:  # joined by (request_id, row)
            rid, row = item["request_id"], item.get("row") or 0
            codes = status.get((rid, row))
            if codes is not None and 200 in codes:
                reasons.append(None)
                continue
            why.append(f"record {row} of request {rid!r} was refused, not answered" if codes
                       else f"request {rid!r} has no record {row}" if rid in known
                       else f"no prediction has request_id {rid!r}")
        if item.get("key") is not None:  # and by key
            codes = keyed.get(item["key"])
            if codes is not None and 200 in codes:
                reasons.append(None)
                continue
            why.append(f"the predictions with key {item['key']!r} were refused" if codes
                       else f"no prediction has key {item['key']!r}")
        reasons.append("; ".join(why) or "names no prediction")
    return reasons
