"""Built-in data sources and the one entry point :func:`load`.

Every source returns frames of the same shape for the same table: text columns are plain
``object``; text that is entirely numbers, ISO dates or true/false becomes numbers, datetimes
or booleans, as a CSV reader would infer; SQL's 0/1 booleans stay integers. That is what makes
a contract or a fingerprint independent of where the table was stored.

The modules, in the order their sources register (later ones are tried first): ``files``
(DataFrame, CSV/TSV, Parquet, JSON Lines), ``sql`` (SQLAlchemy, DuckDB); ``normalize`` holds
normalize_frame(), ``resolve`` the entry points resolve_source() and load().
"""

from mlwright.data.sources.files import (
    CSVSource,
    DataFrameSource,
    JSONLinesSource,
    ParquetSource,
    sniff_csv,
)
from mlwright.data.sources.normalize import normalize_frame
from mlwright.data.sources.resolve import load, read_text_table, resolve_source
from mlwright.data.sources.sql import DuckDBSource, SQLSource

__all__ = ["CSVSource", "DataFrameSource", "DuckDBSource", "JSONLinesSource", "ParquetSource",
           "SQLSource", "load", "normalize_frame", "read_text_table", "resolve_source",
           "sniff_csv"]
