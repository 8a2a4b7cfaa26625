"""A window of the prediction log: what ``monitor.window`` means, for every reader.

A window is the last N records (``"5000"``: exactly N, ordered by time then by log id, so
the oldest request in it may be cut to its last rows) or the records of the last
duration (``"1d"``, ``"6h"``) before ``end`` (default: the last logged record). The monitor
reads a window; the loop's performance trigger scores the same window's labelled records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlwright.exceptions import ConfigError
from mlwright.store.schema import predictions as p

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["WindowSpec", "parse_window", "window_filter"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class WindowSpec:
    """``rows`` records, or ``seconds`` of time; ``text`` as the user wrote it."""

    text: str
    rows: int | None = None
    seconds: float | None = None


def parse_window(window: str | int | WindowSpec, *, field: str = "monitor.window"
                 ) -> WindowSpec:
    """``5000`` / ``"5000"`` -> the last 5000 records; ``"1d"``, ``"6h"``, ``"30m"``,
    ``"2w"`` -> the records of that long before the end. ``field`` names the setting in
    the error message."""
    if isinstance(window, WindowSpec):
        return window
    text = str(window).strip()
    if text.isdigit() and int(text) > 0:
        return WindowSpec(text, rows=int(text))
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f"{field} must be a positive row count (5000) or a duration such as 30m, 6h, "
            f"1d or 2w; got {window!r}.")
    return WindowSpec(text, seconds=float(match.group(1)) * _UNITS[match.group(2)])


def window_filter(engine: Engine, model: str, spec: WindowSpec, *, end: float | None = None,
                  version: str | None = None,
                  roles: tuple[str, ...] = ("champion", "challenger")) -> list[Any] | None:
    """The SQL conditions selecting the window's records of ``model`` (None when the log has
    none): one cheap query on the window index, so that the reads of a window can run side
    by side. ``shadow`` rows are left out by default: they repeat answered requests."""
    from sqlalchemy import func, or_, select

    where: list[Any] = [p.c.model == model, p.c.role.in_(list(roles))]
    if version is not None:
        where.append(p.c.version == str(version))
    if end is not None:
        where.append(p.c.ts <= end)
    with engine.connect() as conn:
        if spec.rows is not None:
            # The N-th latest record starts the window. The records of one request share
            # its time, so the log id breaks the tie: exactly N records, as the user asked
            # (the time alone would take in whole requests: 51 records for a window of 10).
            # The N-th and (N+1)-th times come off the covering window index in its own
            # order; only when they tie is the id read (ordering by id would sort the
            # whole window: 2 s for a million records against 0.4 s).
            edge = conn.execute(select(p.c.ts).where(*where).order_by(p.c.ts.desc()).offset(
                spec.rows - 1).limit(2)).scalars().all()
            if edge:
                start = edge[0]
                if len(edge) == 2 and edge[1] == start:
                    above = conn.execute(select(func.count()).select_from(p).where(
                        *where, p.c.ts > start)).scalar_one()
                    start_id = conn.execute(select(p.c.id).where(*where, p.c.ts == start)
                                            .order_by(p.c.id.desc())
                                            .offset(spec.rows - 1 - above).limit(1)).scalar_one()
                    where.append(or_(p.c.ts > start, p.c.id >= start_id))
                where.append(p.c.ts >= start)
        else:
            if end is None:
                end = conn.execute(select(func.max(p.c.ts)).where(*where)).scalar()
                if end is None:
                    return None
                where.append(p.c.ts <= end)
            where.append(p.c.ts > end - float(spec.seconds or 0))
    return where
