"""Extension point for data sources: subclass :class:`DataSource` and :func:`register_source`.

A source is built from what the user wrote (a path, a URL, a DataFrame) and reads it into a
pandas DataFrame. Sources are tried newest registration first; the first whose
:meth:`DataSource.accepts` returns True reads the data.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import pandas as pd

from mlwright._registry import Registry

__all__ = ["REPEATED_COLUMNS", "SOURCES", "DataSource", "register_source",
           "registered_sources"]

#: ``DataFrame.attrs`` key a source sets when the file's header repeats a name: {the name a
#: repeat was read as ("x.1"): the name in the header ("x")}, so that validation reports a
#: duplicate column rather than an extra "x.1".
REPEATED_COLUMNS = "mlwright.repeated_columns"


class DataSource(abc.ABC):
    """A readable table. ``__init__`` only stores; reading happens in :meth:`read`."""

    #: Short name shown to users ("csv", "parquet", "sql", ...).
    name: ClassVar[str]

    def __init__(self, location: Any, *, table: str | None = None, query: str | None = None,
                 **options: Any) -> None:
        self.location = location
        self.table = table
        self.query = query
        self.options = options

    @classmethod
    @abc.abstractmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        """Whether this source can read ``location``."""

    @abc.abstractmethod
    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        """Read the table (or a sample of ``sample`` rows) into a DataFrame."""

    def describe(self) -> str:
        """A short human description used in messages and lineage."""
        what = self.query or self.table
        return f"{self.name}:{self.location}" + (f" ({what})" if what else "")


SOURCES: Registry[DataSource] = Registry(
    "data source", builtins="mlwright.data.sources",
    register_with="mlwright.data.register_source")


def register_source(cls: type[DataSource]) -> type[DataSource]:
    """Class decorator adding a source to the registry (later registrations win)."""
    return SOURCES.register(cls)


def registered_sources() -> list[type[DataSource]]:
    """Every source, in the order they are tried: the newest registration first."""
    return SOURCES.classes()[::-1]
