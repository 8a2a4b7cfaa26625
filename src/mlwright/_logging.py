"""The library's logger. The library never prints; the CLI shows these records with Rich."""

from __future__ import annotations

import logging

logger = logging.getLogger("mlwright")
logger.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """A child of the ``mlwright`` logger, e.g. ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith("mlwright") else f"mlwright.{name}")
