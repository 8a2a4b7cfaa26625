"""A window of the prediction log: what ``monitor.window`` means, for every reader.

A window is the last N records (``"5000"``: every record logged at or after the N-th
latest one's time, so a request's records are never split) or the records of the last
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
    from sqlalchemy import func, select

    where: list[Any] = [p.c.model == model, p.c.role.in_(list(roles))]
    if version is not None:
        where.append(p.c.version == str(version))
    if end is not None:
        where.append(p.c.ts <= end)
    with engine.connect() as conn:
        if spec.rows is not None:
            # The N-th latest record's time starts the window; the records of its request
            # share that time, so a request is never split.
            start = conn.execute(select(p.c.ts).where(*where).order_by(p.c.ts.desc()).offset(
                spec.rows - 1).limit(1)).scalar()
            if start is not None:
                where.append(p.c.ts >= start)
        else:
            if end is None:
                end = conn.execute(select(func.max(p.c.ts)).where(*where)).scalar()
                if end is None:
                    return None
                where.append(p.c.ts <= end)
            where.append(p.c.ts > end - float(spec.seconds or 0))
    return where
