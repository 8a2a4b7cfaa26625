"""Durations in the loop's settings (the live score is :func:`mlwright.scoring.live_score`;
windows are :func:`mlwright.store.parse_window`)."""

from __future__ import annotations

import re

from mlwright.exceptions import ConfigError

__all__ = ["parse_interval"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str, *, field: str = "interval") -> float:
    """``"45s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text))
    if not match:
        raise ConfigError(f"{field} must be a duration like 45s, 30m, 12h, 7d or 2w; got "
                          f"{text!r}.")
    return float(match.group(1)) * _UNITS[match.group(2)]
