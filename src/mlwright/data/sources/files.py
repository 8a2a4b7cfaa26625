"""File readers: CSV/TSV (pyarrow, pandas fallback), Parquet (files and folders of parts),
JSON Lines; and the in-memory DataFrame source."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright._logging import get_logger
from mlwright.data._base import REPEATED_COLUMNS, DataSource, register_source
from mlwright.data.sources._common import (
    _CSV_EXT,
    _JSONL_EXT,
    _PARQUET_EXT,
    _check_file,
    _path_of,
    _require_columns,
    _sample_positions,
    _sample_rows,
)
from mlwright.exceptions import ColumnNotFoundError, DataSourceError, EmptyDataError

__all__ = ["CSVSource", "DataFrameSource", "JSONLinesSource", "ParquetSource", "sniff_csv"]

log = get_logger(__name__)


# Text that every reader takes for a missing value: pandas' defaults, given to pyarrow as well
# so that the fast CSV path and the pandas fallback agree on what is missing.
_NULL_TEXT = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)
# Delimiters tried when none is given, in order of preference on a tie.
_DELIMITERS = (",", "\t", ";", "|")
_SNIFF_BYTES = 65536


@register_source
class DataFrameSource(DataSource):
    name = "dataframe"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        return isinstance(location, pd.DataFrame)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        _require_columns(columns, [str(c) for c in self.location.columns])
        df = self.location if columns is None else self.location[columns]
        return _sample_rows(df.copy(), sample, seed)

    def describe(self) -> str:
        return "dataframe"


def _open_bytes(path: Path) -> Any:
    """``path`` opened as a binary stream, decompressed according to its extension."""
    name = str(path).lower()
    if name.endswith(".xz"):  # the one codec pyarrow lacks
        import lzma

        return lzma.open(path, "rb")
    import pyarrow as pa

    codec = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}.get(path.suffix.lower())
    return pa.input_stream(str(path), compression=codec)


def _detect_encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text"
        return "utf-16"
    # A multi-byte character cut at the end of the sniffed bytes is not an encoding error.
    body = head[:-4] if len(head) == _SNIFF_BYTES else head
    for encoding in ("utf-8", "cp1252"):
        try:
            body.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"  # decodes any byte sequence


def sniff_csv(body: bytes) -> tuple[str, str]:
    """(encoding, delimiter) of CSV bytes, as :func:`load` detects them for a file."""
    head = body[:_SNIFF_BYTES]
    encoding = _detect_encoding(head)
    text = head.decode(encoding, errors="replace")
    return encoding, _detect_delimiter(text, complete=len(body) <= _SNIFF_BYTES)


def _detect_delimiter(text: str, complete: bool) -> str:
    """The delimiter that splits the first lines into the most, equally many, fields.

    Parsing with :mod:`csv` honours quotes, so a comma inside a quoted field of a
    semicolon-separated file does not count; :class:`csv.Sniffer` is the last resort.
    """
    lines = text.splitlines(keepends=True)
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    sample = "".join(lines[:200])
    best, best_fields = None, 1
    for delimiter in _DELIMITERS:
        try:
            # newline="": csv's own line splitting, so a lone "\r" (old Mac files) ends a line.
            rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
                    if r]
        except csv.Error:
            continue
        widths = {len(r) for r in rows}
        if len(widths) == 1 and (fields := widths.pop()) > best_fields:
            best, best_fields = delimiter, fields
    if best is not None:
        return best
    try:
        return csv.Sniffer().sniff(sample[:20000], delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _pandas_style_names(names: list[str]) -> list[str]:
    """Column names as pandas' own CSV parser gives them: blanks named, duplicates numbered."""
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        name = name if name.strip() else f"Unnamed: {i}"
        base, k = name, 0
        while name in seen:
            k += 1
            name = f"{base}.{k}"
        seen.add(name)
        out.append(name)
    return out


def _mark_repeated(df: pd.DataFrame, repeated: dict[str, str]) -> pd.DataFrame:
    """Note the header's repeated names on the frame (``REPEATED_COLUMNS``) for validation."""
    kept = {name: raw for name, raw in repeated.items() if name in df.columns}
    if kept:
        df.attrs[REPEATED_COLUMNS] = kept
    return df


def _log_late_encoding(path: Path, sniffed: str, used: str) -> None:
    if used != sniffed:
        log.warning("%s is not valid %s past its first 64 KiB; read it as %s", path, sniffed, used)


def _has_binary_column(table: Any) -> bool:
    import pyarrow as pa

    return any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in table.schema.types)


def _arrow_to_pandas(table: Any) -> pd.DataFrame:
    """Convert a pyarrow table read from text into the frame pandas' CSV parser would give."""
    import pyarrow as pa

    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_null(kind):  # an empty column: pandas reads it as float NaN
            kind = pa.float64()
        elif pa.types.is_date(kind):  # pandas reads ISO dates as text, then as datetimes
            kind = pa.timestamp("s")
        elif pa.types.is_time(kind):  # pandas keeps clock times as text
            kind = pa.string()
        fields.append(pa.field(field.name, kind))
    schema = pa.schema(fields)
    if schema != table.schema:
        table = table.cast(schema)
    # self_destruct frees each Arrow column once converted: lower peak memory on big files.
    return table.to_pandas(split_blocks=True, self_destruct=True)


@register_source
class CSVSource(DataSource):
    """CSV or TSV (optionally compressed); delimiter and encoding are detected.

    Files are parsed by pyarrow's multi-threaded reader; pandas' parser is the fallback for
    what pyarrow rejects (multi-character delimiters, ragged rows), or the choice with
    ``engine="pandas"``. Both give the same types.
    """

    name = "csv"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and str(path).lower().endswith(_CSV_EXT)

    def _sniff(self, path: Path) -> tuple[str, str, list[str], dict[str, str]]:
        """Delimiter, encoding, header names (repeats numbered) and the repeats (``{"x.1":
        "x"}``), from the first 64 KiB."""
        with _open_bytes(path) as fh:
            head = fh.read(_SNIFF_BYTES)
        if not head.strip():
            raise EmptyDataError(
                f"{str(path)!r} is empty: expected a header row and at least one row of data."
            )
        encoding = self.options.get("encoding") or _detect_encoding(head)
        if b"\x00" in head and not encoding.lower().replace("-", "").startswith("utf16"):
            raise DataSourceError(
                f"{str(path)!r} holds binary data, not delimited text: is it another format or "
                f"compressed? Give it the matching extension (.parquet, .csv.gz, ...)."
            )
        text = head.decode(encoding, errors="replace")
        delimiter = self.options.get("delimiter") or self.options.get("sep")
        if delimiter is None:
            if str(path).lower().endswith((".tsv", ".tsv.gz")):
                delimiter = "\t"
            else:
                delimiter = _detect_delimiter(text, complete=len(head) < _SNIFF_BYTES)
        header: list[str] = []
        if len(delimiter) == 1:
            header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""),
                                     delimiter=delimiter), [])
        names = _pandas_style_names(header)
        seen: set[str] = set()
        repeated: dict[str, str] = {}
        for raw, name in zip(header, names, strict=True):
            if raw in seen and raw.strip():
                repeated[name] = raw
            seen.add(raw)
        return delimiter, encoding, names, repeated

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        path = _path_of(self.location) or Path(str(self.location))
        _check_file(path)
        delimiter, encoding, header, repeated = self._sniff(path)
        if header:
            _require_columns(columns, header)
        engine = self.options.get("engine", "pyarrow")
        if engine not in ("pyarrow", "pandas"):
            raise DataSourceError(f"engine={engine!r}: expected 'pyarrow' or 'pandas'.")
        encodings = [encoding]
        if "encoding" not in self.options and encoding.startswith("utf-8"):
            # Only the head was sniffed: a legacy byte further down means cp1252 (or latin-1).
            encodings += ["cp1252", "latin-1"]
        if len(delimiter) == 1 and engine == "pyarrow":
            for i, candidate in enumerate(encodings):
                try:
                    table = self._read_arrow(path, delimiter, candidate, header, columns)
                except UnicodeDecodeError as exc:
                    log.debug("%s is not %s (%s)", path, candidate, exc)
                    continue
                except Exception as exc:  # pyarrow.ArrowInvalid and friends
                    if "utf8" in str(exc).lower().replace("-", ""):
                        log.debug("%s is not %s (%s)", path, candidate, exc)
                        continue
                    log.info("pyarrow could not parse %s (%s); using pandas' parser", path, exc)
                    encodings = encodings[i:]
                    break
                if candidate != encodings[-1] and _has_binary_column(table):
                    # pyarrow keeps text that is not valid UTF-8 as bytes instead of failing.
                    log.debug("%s has bytes that are not %s", path, candidate)
                    continue
                _log_late_encoding(path, encoding, candidate)
                positions = _sample_positions(table.num_rows, sample, seed)
                if positions is not None:
                    table = table.take(positions)
                return _mark_repeated(_arrow_to_pandas(table), repeated)
        for candidate in encodings:
            try:
                df = self._read_pandas(path, delimiter, candidate, columns)
            except UnicodeDecodeError as exc:
                if candidate == encodings[-1]:
                    raise self._parse_error(path, delimiter, candidate, exc) from exc
                continue
            _log_late_encoding(path, encoding, candidate)
            return _mark_repeated(_sample_rows(df if columns is None else df[columns], sample,
                                               seed), repeated)
        raise AssertionError("unreachable: latin-1 decodes any byte")  # pragma: no cover

    def _read_arrow(self, path: Path, delimiter: str, encoding: str, header: list[str],
                    columns: list[str] | None) -> Any:
        import pyarrow.csv as pacsv

        read_options = pacsv.ReadOptions(
            # pyarrow skips a UTF-8 byte-order mark itself; other codecs are transcoded.
            encoding="utf8" if encoding.startswith("utf-8") else encoding,
        )
        if header:
            # Our own names (blank and duplicate ones fixed as pandas does) replace the header.
            read_options.column_names = header
            read_options.skip_rows = 1
        convert = pacsv.ConvertOptions(
            null_values=list(_NULL_TEXT), strings_can_be_null=True, include_columns=columns
        )
        try:
            with _open_bytes(path) as fh:
                return pacsv.read_csv(fh, read_options=read_options, convert_options=convert,
                                      parse_options=pacsv.ParseOptions(delimiter=delimiter))
        except Exception as exc:
            message = str(exc)
            if not ("Expected" in message and "columns" in message) and "sync" not in message:
                raise
        # A quoted value spanning lines can straddle pyarrow's parallel blocks: parse again,
        # allowing it (slower, so only when needed).
        with _open_bytes(path) as fh:
            return pacsv.read_csv(
                fh, read_options=read_options, convert_options=convert,
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            )

    def _read_pandas(self, path: Path, delimiter: str, encoding: str,
                     columns: list[str] | None) -> pd.DataFrame:
        engine = "c" if len(delimiter) == 1 else "python"  # regex delimiters need Python's
        try:
            with _open_bytes(path) as fh:
                kwargs: dict[str, Any] = {"low_memory": False} if engine == "c" else {}
                return pd.read_csv(fh, sep=delimiter, encoding=encoding, usecols=columns,
                                   engine=engine, **kwargs)
        except UnicodeDecodeError:
            raise
        except pd.errors.EmptyDataError as exc:
            raise EmptyDataError(
                f"{str(path)!r} is empty: expected a header row and data."
            ) from exc
        except (ValueError, pd.errors.ParserError) as exc:
            raise self._parse_error(path, delimiter, encoding, exc) from exc

    @staticmethod
    def _parse_error(path: Path, delimiter: str, encoding: str, exc: Exception
                     ) -> DataSourceError:
        return DataSourceError(
            f"Could not parse {str(path)!r} as delimited text (delimiter {delimiter!r}, "
            f"encoding {encoding}): {str(exc).strip()}. Fix the file, or pass "
            f"delimiter=/encoding= to load() (--delimiter/--encoding on the command line)."
        )


@register_source
class ParquetSource(DataSource):
    """A Parquet file, or a folder of Parquet parts (Hive partitions such as ``year=2024/``)."""

    name = "parquet"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and (
            str(path).lower().endswith(_PARQUET_EXT)
            or (path.is_dir() and any(path.rglob("*.parquet")))
        )

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        import pyarrow.dataset as ds

        path = _path_of(self.location) or Path(str(self.location))
        if not path.is_dir():
            _check_file(path)
        try:
            dataset = ds.dataset(str(path), format="parquet",
                                 partitioning="hive" if path.is_dir() else None)
            _require_columns(columns, dataset.schema.names)
            positions = _sample_positions(dataset.count_rows(), sample, seed)
            if positions is None:
                table = dataset.to_table(columns=columns)
            else:
                table = self._take(dataset, positions, columns)
            # Text that is not UTF-8 (a damaged file) fails here, not in to_pandas.
            table.validate(full=True)
        except ColumnNotFoundError:
            raise
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise DataSourceError(
                f"Could not read {str(path)!r} as Parquet ({exc}). Check that it is a complete "
                f"Parquet file (or a folder of them), e.g. with pyarrow.parquet.read_metadata."
            ) from exc
        return table.to_pandas(split_blocks=True, self_destruct=True)

    @staticmethod
    def _take(dataset: Any, positions: np.ndarray, columns: list[str] | None) -> Any:
        """The rows at ``positions``, read one row group at a time.

        Row groups holding no drawn row are skipped, and memory holds one row group plus the
        sample, never the whole table (``Dataset.take`` materialises every row group).
        """
        import pyarrow as pa

        pieces, offset = [], 0
        for fragment in dataset.get_fragments():
            for group in fragment.row_groups:
                lo, hi = np.searchsorted(positions, [offset, offset + group.num_rows])
                if hi > lo:
                    part = fragment.subset(row_group_ids=[group.id]).to_table(
                        schema=dataset.schema, columns=columns)
                    pieces.append(part.take(positions[lo:hi] - offset))
                offset += group.num_rows
        return pa.concat_tables(pieces)


@register_source
class JSONLinesSource(DataSource):
    """JSON Lines (one object per line); a ``.json`` file holding one array also works."""

    name = "jsonl"

    @classmethod
    def accepts(cls, location: Any, *, table: str | None, query: str | None) -> bool:
        path = _path_of(location)
        return path is not None and str(path).lower().endswith(_JSONL_EXT)

    def read(self, *, sample: int | None = None, columns: list[str] | None = None,
             seed: int = 0) -> pd.DataFrame:
        path = _path_of(self.location) or Path(str(self.location))
        _check_file(path)
        with _open_bytes(path) as fh:
            head = fh.read(_SNIFF_BYTES).lstrip()
        if not head:
            raise EmptyDataError(f"{str(path)!r} is empty: expected one JSON object per line.")
        lines = not head.startswith(b"[")
        try:
            # dtype=False: values stay as JSON typed them; text dates are left to normalize_frame.
            df = pd.read_json(path, lines=lines, dtype=False, orient=None if lines else "records")
        except ValueError as exc:
            raise DataSourceError(
                f"Could not read {str(path)!r} as JSON Lines (one JSON object per line) or a "
                f"JSON array of objects: {exc}. Check that each line is one complete object."
            ) from exc
        _require_columns(columns, [str(c) for c in df.columns])
        if columns is not None:
            df = df[columns]
        return _sample_rows(df, sample, seed)
