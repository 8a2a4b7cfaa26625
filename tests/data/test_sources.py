"""The readers of mlwright.data.load on real data: a telco slice written to every format.

The reference is the slice read back from a plain comma-separated CSV; every other way of
storing the same table must give an identical frame (values and dtypes), and a sample with the
same seed must hold the same rows whatever the format.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import sqlite3
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlwright.data import load
from mlwright.datasets import load_suite
from mlwright.exceptions import ColumnNotFoundError, DataSourceError, EmptyDataError

# Place names with letters outside ASCII, for the encoding tests.
CITIES = ["Zürich", "Montréal", "São Paulo", "Kraków", "Malmö", "Cañon City"]


@pytest.fixture()
def reference(telco: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "reference.csv"
    telco.to_csv(path, index=False)
    return load(path)


def test_reference_is_the_table_itself(telco: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert reference.shape == telco.shape
    assert reference["total_charges"].isna().sum() == telco["total_charges"].isna().sum()
    assert reference["churn"].tolist() == telco["churn"].tolist()
    assert reference["churn"].dtype == object


# --- delimited text -----------------------------------------------------------------------

@pytest.mark.parametrize(("sep", "name"), [(";", "semi.csv"), ("|", "pipe.csv"),
                                           ("\t", "tab.csv"), ("\t", "tab.tsv")])
def test_delimiter_is_detected(telco: pd.DataFrame, reference: pd.DataFrame, tmp_path: Path,
                               sep: str, name: str) -> None:
    telco.to_csv(tmp_path / name, sep=sep, index=False)
    pd.testing.assert_frame_equal(load(tmp_path / name), reference)


@pytest.mark.parametrize("sep", [",", ";"])
def test_quoted_fields_keep_delimiters_quotes_and_newlines(telco: pd.DataFrame, tmp_path: Path,
                                                           sep: str) -> None:
    notes = ["a, b; c", 'she said "no"', "two\nlines", "x|y", "plain", ""]
    df = telco.assign(note=[notes[i % len(notes)] for i in range(len(telco))])
    df.to_csv(tmp_path / "quoted.csv", sep=sep, index=False)
    got = load(tmp_path / "quoted.csv")
    assert got.shape == df.shape
    expected = df["note"].replace("", np.nan)  # an empty field is missing, as in pandas
    pd.testing.assert_series_equal(got["note"], expected, check_dtype=False)


def test_utf8_byte_order_mark_is_not_part_of_the_first_name(
        telco: pd.DataFrame, reference: pd.DataFrame, tmp_path: Path) -> None:
    telco.to_csv(tmp_path / "bom.csv", index=False, encoding="utf-8-sig")
    assert (tmp_path / "bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    got = load(tmp_path / "bom.csv")
    assert got.columns[0] == "churn"
    pd.testing.assert_frame_equal(got, reference)


@pytest.mark.parametrize(("encoding", "sep"), [("cp1252", ","), ("latin-1", ";"),
                                               ("utf-16", "\t")])
def test_legacy_encodings_are_detected(telco: pd.DataFrame, tmp_path: Path, encoding: str,
                                       sep: str) -> None:
    df = telco.assign(city=[CITIES[i % len(CITIES)] for i in range(len(telco))])
    df.to_csv(tmp_path / "legacy.csv", index=False, encoding=encoding, sep=sep)
    with pytest.raises(UnicodeDecodeError):
        (tmp_path / "legacy.csv").read_bytes().decode("utf-8")
    got = load(tmp_path / "legacy.csv")
    assert got["city"].tolist() == df["city"].tolist()
    assert got.shape == df.shape


def test_euro_sign_is_read_as_cp1252(telco: pd.DataFrame, tmp_path: Path) -> None:
    df = telco.assign(price=[f"{v:.2f} €" for v in telco["monthly_charges"]])
    df.to_csv(tmp_path / "euro.csv", index=False, encoding="cp1252")
    assert load(tmp_path / "euro.csv")["price"].tolist() == df["price"].tolist()


def test_legacy_byte_after_the_sniffed_head(caplog: pytest.LogCaptureFixture,
                                            tmp_path: Path) -> None:
    # Only the first 64 KiB are sniffed: a cp1252 byte further down must not be lost.
    df = load_suite("telco_churn", nrows=3000).assign(city="Paris")
    df.loc[len(df) - 10:, "city"] = "Zürich"
    path = tmp_path / "late.csv"
    df.to_csv(path, index=False, encoding="cp1252")
    assert path.read_bytes()[:65536].isascii() and not path.read_bytes().isascii()
    with caplog.at_level(logging.WARNING, logger="mlwright"):
        for engine in ("pyarrow", "pandas"):
            got = load(path, engine=engine)
            assert got["city"].value_counts().to_dict() == {"Paris": len(df) - 10, "Zürich": 10}
    assert "read it as cp1252" in caplog.text


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zst"])
def test_compressed_csv(telco: pd.DataFrame, reference: pd.DataFrame, tmp_path: Path,
                        suffix: str) -> None:
    raw = telco.to_csv(index=False).encode()
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv.zst":
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(raw)
    else:
        opener = {".csv.gz": gzip.open, ".csv.bz2": bz2.open, ".csv.xz": lzma.open}[suffix]
        with opener(path, "wb") as out:
            out.write(raw)
    assert path.read_bytes()[:2000] != raw[:2000]
    pd.testing.assert_frame_equal(load(path), reference)
    pd.testing.assert_frame_equal(load(path, engine="pandas"), reference)


def test_pyarrow_and_pandas_parsers_give_the_same_frame(tmp_path: Path) -> None:
    """pyarrow parses timestamps, dates, clock times and empty columns itself; pandas' parser
    leaves text for normalize_frame. Both must end up with the same types and values."""
    df = load_suite("mpls_person_search", nrows=1500)
    df["day"] = df["date"].dt.strftime("%Y-%m-%d").where(np.arange(len(df)) % 7 > 0)
    df["clock"] = df["date"].dt.strftime("%H:%M:%S")
    df["local"] = df["date"].dt.tz_localize(None)
    df["nothing"] = np.nan
    df["flag"] = np.where(np.arange(len(df)) % 3 == 0, "True", "False")
    tokens = ["", "NA", "N/A", "NULL", "null", "NaN", "nan", "None", "#N/A", "<NA>"]
    df["sparse"] = [tokens[i % len(tokens)] if i % 2 else "value" for i in range(len(df))]
    df.to_csv(tmp_path / "mpls.csv", index=False)

    fast = load(tmp_path / "mpls.csv")
    fallback = load(tmp_path / "mpls.csv", engine="pandas")
    pd.testing.assert_frame_equal(fast, fallback)
    assert str(fast["date"].dtype) == "datetime64[ns, UTC]"
    assert str(fast["day"].dtype) == "datetime64[ns]" and fast["day"].isna().sum() > 0
    assert str(fast["local"].dtype) == "datetime64[ns]"
    assert fast["clock"].dtype == object and fast["clock"].iloc[0] == df["clock"].iloc[0]
    assert fast["nothing"].isna().all()
    assert fast["flag"].dtype == bool
    assert fast["sparse"].isna().sum() == len(df) // 2
    assert (fast["sparse"].dropna() == "value").all()


def test_sampling_agrees_between_parsers(tmp_path: Path) -> None:
    load_suite("mpls_person_search", nrows=2000).to_csv(tmp_path / "m.csv", index=False)
    fast = load(tmp_path / "m.csv", sample=150, seed=4)
    pd.testing.assert_frame_equal(fast, load(tmp_path / "m.csv", sample=150, seed=4,
                                             engine="pandas"))
    assert len(fast) == 150


def test_quoted_newlines_across_parallel_blocks(caplog: pytest.LogCaptureFixture,
                                                tmp_path: Path) -> None:
    # Every value spans two lines, so pyarrow's 1 MiB blocks are bound to split one; the
    # reader must notice and parse again with newlines allowed in values, still with pyarrow.
    n = 200_000
    df = pd.DataFrame({"a": np.arange(n), "note": "two\nlines", "b": np.arange(n) * 2})
    df.to_csv(tmp_path / "multi.csv", index=False)
    with caplog.at_level(logging.INFO, logger="mlwright"):
        got = load(tmp_path / "multi.csv")
    assert "using pandas' parser" not in caplog.text
    assert got.shape == (n, 3)
    assert (got["note"] == "two\nlines").all()
    assert got["b"].tolist() == df["b"].tolist()


def test_multi_character_delimiter_uses_the_fallback(telco: pd.DataFrame,
                                                     reference: pd.DataFrame,
                                                     tmp_path: Path) -> None:
    text = telco.to_csv(index=False, sep="|").replace("|", "::")
    (tmp_path / "colons.txt").write_text(text)
    pd.testing.assert_frame_equal(load(tmp_path / "colons.txt", delimiter="::"), reference)


def test_blank_and_duplicate_header_names_as_pandas_names_them(tmp_path: Path) -> None:
    (tmp_path / "names.csv").write_text("a,,a,b\n1,2,3,x\n4,5,6,y\n")
    for engine in ("pyarrow", "pandas"):
        got = load(tmp_path / "names.csv", engine=engine)
        assert list(got.columns) == ["a", "Unnamed: 1", "a.1", "b"]
        assert got["a.1"].tolist() == [3, 6]
        assert got.attrs["mlwright.repeated_columns"] == {"a.1": "a"}  # "Unnamed: 1" is not


def test_a_repeated_header_column_is_reported_as_a_duplicate(telco: pd.DataFrame,
                                                              tmp_path: Path) -> None:
    """Issue 14 point 12: ``x,x`` was reported as an extra column ``x.1`` (and a missing
    one), never as a duplicate."""
    from typer.testing import CliRunner

    import mlwright as mw
    from mlwright.cli import app

    contract = mw.learn_contract(telco, target="churn")
    header, rows = telco.to_csv(index=False).split("\n", 1)
    names = header.split(",")
    renamed, names[2] = names[2], names[1]  # the third column's name repeats the second's
    path = tmp_path / "repeated.csv"
    path.write_text(",".join(names) + "\n" + rows)
    for engine in ("pyarrow", "pandas"):
        frame = mw.validate(load(path, engine=engine), contract).to_frame()
        rules = dict(zip(frame["column"], frame["rule"], strict=True))
        assert rules == {names[1]: "duplicate_column", renamed: "missing_column"}
        message = frame.loc[frame["rule"] == "duplicate_column", "message"].item()
        assert f"Column {names[1]!r} appears 2 times in the header" in message
    contract_file = tmp_path / "contract.json"
    contract.save(contract_file)
    result = CliRunner().invoke(app, ["validate", str(path), "--contract", str(contract_file)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "duplicate_column" in result.output
    assert f"{names[1]}.1" not in result.output.replace(f"read as '{names[1]}.1'", "")


# --- columnar files and databases ----------------------------------------------------------

def _sqlite(df: pd.DataFrame, path: Path) -> str:
    with sqlite3.connect(path) as conn:
        df.to_sql("customers", conn, index=False)
    return f"sqlite:///{path}"


def _duckdb(df: pd.DataFrame, path: Path) -> Path:
    with duckdb.connect(str(path)) as conn:
        conn.register("frame", df)
        conn.execute("CREATE TABLE customers AS SELECT * FROM frame")
    return path


def test_parquet_file_and_folder_of_parts(telco: pd.DataFrame, reference: pd.DataFrame,
                                          tmp_path: Path) -> None:
    telco.to_parquet(tmp_path / "one.parquet", index=False)
    pd.testing.assert_frame_equal(load(tmp_path / "one.parquet"), reference)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, start in enumerate(range(0, len(telco), 300)):
        telco.iloc[start:start + 300].to_parquet(parts / f"part-{i:03d}.parquet", index=False)
    (parts / "_SUCCESS").write_text("")  # what Spark leaves behind; must be ignored
    pd.testing.assert_frame_equal(load(parts), reference)


def test_shuffled_frames_and_parquet_with_their_row_labels_load_intact(
        telco: pd.DataFrame, reference: pd.DataFrame, tmp_path: Path) -> None:
    # What train_test_split leaves: rows in a new order under their old labels. Pandas
    # stores those labels in the Parquet file and restores them as the index on reading.
    order = np.random.default_rng(0).permutation(len(telco))
    telco.iloc[order].to_parquet(tmp_path / "shuffled.parquet")
    expected = reference.iloc[order].reset_index(drop=True)
    got = load(tmp_path / "shuffled.parquet")
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(load(telco.iloc[order]), expected)


def test_parquet_hive_partitions_become_a_column(telco: pd.DataFrame, tmp_path: Path) -> None:
    telco.to_parquet(tmp_path / "by_contract", partition_cols=["contract"], index=False)
    assert not list((tmp_path / "by_contract").glob("*.parquet"))  # parts only in sub-folders
    got = load(tmp_path / "by_contract")
    assert sorted(got.columns) == sorted(telco.columns)
    assert got["contract"].value_counts().to_dict() == telco["contract"].value_counts().to_dict()
    assert got["churn"].value_counts().to_dict() == telco["churn"].value_counts().to_dict()
    sample = load(tmp_path / "by_contract", sample=50, seed=1)
    assert sample.shape == (50, telco.shape[1]) and sample["contract"].notna().all()
    assert set(sample["contract"]) <= set(telco["contract"])


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.json", "rows.jsonl.gz"])
def test_json_lines_and_json_array(telco: pd.DataFrame, reference: pd.DataFrame,
                                   tmp_path: Path, name: str) -> None:
    telco.to_json(tmp_path / name, orient="records", lines=name != "rows.json")
    pd.testing.assert_frame_equal(load(tmp_path / name), reference)


def test_sqlite_table_and_query(telco: pd.DataFrame, reference: pd.DataFrame,
                                tmp_path: Path) -> None:
    url = _sqlite(telco, tmp_path / "shop.db")
    pd.testing.assert_frame_equal(load(url, table="customers"), reference)
    pd.testing.assert_frame_equal(load(url, query="SELECT * FROM customers;"), reference)
    churned = load(url, query="SELECT tenure, churn FROM customers WHERE churn = 'Yes'")
    assert list(churned.columns) == ["tenure", "churn"]
    assert len(churned) == int((telco["churn"] == "Yes").sum())


def test_duckdb_file_and_url_with_table_or_query(telco: pd.DataFrame, reference: pd.DataFrame,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    db = _duckdb(telco, tmp_path / "shop.duckdb")
    monkeypatch.chdir(tmp_path)
    for location in (db, "shop.duckdb", "duckdb:///shop.duckdb", f"duckdb:///{db}"):
        pd.testing.assert_frame_equal(load(location, table="customers"), reference)
    got = load("duckdb:///shop.duckdb", query="SELECT churn, count(*) AS n FROM customers "
                                                "GROUP BY churn ORDER BY churn")
    assert got.set_index("churn")["n"].to_dict() == telco["churn"].value_counts().to_dict()


def test_columns_are_read_in_the_order_asked(telco: pd.DataFrame, reference: pd.DataFrame,
                                             tmp_path: Path) -> None:
    telco.to_csv(tmp_path / "t.csv", index=False)
    telco.to_parquet(tmp_path / "t.parquet", index=False)
    telco.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    wanted = ["tenure", "churn", "total_charges"]
    expected = reference[wanted]
    sources = [(tmp_path / "t.csv", {}), (tmp_path / "t.csv", {"engine": "pandas"}),
               (tmp_path / "t.parquet", {}), (tmp_path / "t.jsonl", {}),
               (_sqlite(telco, tmp_path / "t.db"), {"table": "customers"}),
               (_duckdb(telco, tmp_path / "t.duckdb"), {"table": "customers"}), (telco, {})]
    for source, options in sources:
        pd.testing.assert_frame_equal(load(source, columns=wanted, **options), expected)
        with pytest.raises(ColumnNotFoundError, match="Did you mean 'churn'"):
            load(source, columns=["Churn"], **options)


# --- sampling ----------------------------------------------------------------------------

def test_a_sample_is_the_same_rows_in_every_format(telco: pd.DataFrame,
                                                   tmp_path: Path) -> None:
    telco.to_csv(tmp_path / "t.csv", index=False)
    # Many small row groups: the sampled Parquet read skips and stitches them.
    telco.to_parquet(tmp_path / "t.parquet", index=False, row_group_size=97)
    telco.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    url = _sqlite(telco, tmp_path / "t.db")
    sample = load(tmp_path / "t.csv", sample=120, seed=7)
    assert len(sample) == 120
    full = load(tmp_path / "t.csv")
    assert not sample.equals(full.head(120))  # drawn at random, not the first rows
    for source, options in [(tmp_path / "t.parquet", {}), (tmp_path / "t.jsonl", {}),
                            (url, {"table": "customers"}),
                            # small chunks: the streamed path keeps rows from many chunks
                            (url, {"query": "SELECT * FROM customers", "chunk_rows": 64}),
                            (telco, {})]:
        pd.testing.assert_frame_equal(load(source, sample=120, seed=7, **options), sample)
    assert not load(tmp_path / "t.csv", sample=120, seed=8).equals(sample)
    pd.testing.assert_frame_equal(load(tmp_path / "t.csv", sample=10_000), full)


def test_duckdb_sample_is_pushed_down_and_repeatable(telco: pd.DataFrame,
                                                     tmp_path: Path) -> None:
    db = _duckdb(telco, tmp_path / "t.duckdb")
    first = load(db, table="customers", sample=100, seed=3)
    assert len(first) == 100
    pd.testing.assert_frame_equal(load(db, table="customers", sample=100, seed=3), first)
    assert not load(db, table="customers", sample=100, seed=4).equals(first)
    # Every sampled row is a row of the table.
    keys = ["tenure", "monthly_charges", "churn", "contract"]
    table_rows = set(map(tuple, load(db, table="customers")[keys].itertuples(index=False)))
    assert set(map(tuple, first[keys].itertuples(index=False))) <= table_rows


def test_sample_must_be_positive(reference: pd.DataFrame) -> None:
    with pytest.raises(DataSourceError, match="positive number of rows, got 0"):
        load(reference, sample=0)


# --- errors raised by the readers -----------------------------------------------------------

def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"No file at .*nope\.csv.*Check the path"):
        load(tmp_path / "nope.csv")
    with pytest.raises(DataSourceError, match=r"No file at .*nope\.xlsx"):
        load(tmp_path / "nope.xlsx")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataSourceError, match=r"spreadsheet.*save the sheet as CSV"):
        load(tmp_path / "sheet.xlsx")
    (tmp_path / "bad.parquet").write_bytes(np.random.default_rng(1).bytes(2048))
    with pytest.raises(DataSourceError, match=r"'.*bad\.parquet' as Parquet"):
        load(tmp_path / "bad.parquet")
    (tmp_path / "bad.duckdb").write_bytes(np.random.default_rng(2).bytes(8192))
    with pytest.raises(DataSourceError, match="not a valid DuckDB database"):
        load(tmp_path / "bad.duckdb", table="t")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataSourceError, match="as JSON Lines"):
        load(tmp_path / "bad.jsonl")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataSourceError, match="Expected 2 fields in line 3, saw 3"):
        load(tmp_path / "ragged.csv")


@pytest.mark.parametrize("content", [b"", b"\n\n", b"a,b,c\n"])
def test_empty_files(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "empty.csv").write_bytes(content)
    with pytest.raises(EmptyDataError, match=r"empty.csv"):
        load(tmp_path / "empty.csv")
    (tmp_path / "empty.jsonl").write_bytes(content if content != b"a,b,c\n" else b"[]")
    with pytest.raises(EmptyDataError, match=r"empty.jsonl"):
        load(tmp_path / "empty.jsonl")


def test_database_errors_name_the_table(telco: pd.DataFrame, tmp_path: Path) -> None:
    url = _sqlite(telco, tmp_path / "shop.db")
    with pytest.raises(DataSourceError, match=r"No table 'customer'.*Did you mean 'customers'"):
        load(url, table="customer")
    with pytest.raises(DataSourceError, match=r"no such table: orders.*'customers'"):
        load(url, query="SELECT * FROM orders")
    with pytest.raises(DataSourceError, match="no such column: age"):
        load(url, query="SELECT age FROM customers")
    db = _duckdb(telco, tmp_path / "shop.duckdb")
    with pytest.raises(DataSourceError, match=r"customer.*Did you mean 'customers'"):
        load(db, table="customer")
    with pytest.raises(DataSourceError, match=r"orders.*Tables in the database: 'customers'"):
        load(f"duckdb:///{db}", query="SELECT * FROM orders")


def test_missing_database_driver_gives_the_install_hint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # make test installs psycopg (the PostgreSQL tests need it): import it as if absent.
    for name in ("psycopg", "psycopg2"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DataSourceError) as info:
        load("postgresql://analyst:s3cret@db.example.com:5432/sales", table="orders")
    message = str(info.value)
    assert "pip install 'mlwright[postgres]'" in message
    assert "postgresql://analyst:***@db.example.com:5432/sales" in message
    assert "s3cret" not in message


def test_unusable_urls() -> None:
    with pytest.raises(DataSourceError, match="not a usable SQLAlchemy URL"):
        load("notadb://somewhere/db", table="t")
    with pytest.raises(DataSourceError, match="Cannot tell how to read 'https://"):
        load("https://example.com/data.csv")
