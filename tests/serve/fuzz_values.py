"""Hypothesis strategies of the fuzz tests: values a client may put in a field, per column
type, and the real telco_churn contracts (one per policy set) they are checked against."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mlwright.data.contract import Contract, learn_contract, rules

#: The default budget keeps each property at a few seconds; ``slow`` tests run DEEP.
QUICK = settings(max_examples=60, deadline=2000, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))
DEEP = settings(max_examples=500, deadline=5000, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def with_dates(telco: pd.DataFrame) -> pd.DataFrame:
    """telco_churn with a date column (it has none): sign-up times over three years, 5 %
    missing, so that every logical type of a contract is fuzzed."""
    df = telco.copy()
    rng = np.random.default_rng(13)
    stamps = pd.Timestamp("2015-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 3 * 365 * 24, len(df)), unit="h")
    df["signed_up"] = pd.Series(stamps).where(rng.random(len(df)) > 0.05)
    return df


def contracts(df: pd.DataFrame) -> dict[str, Contract]:
    """The contract of ``df`` under each policy: the defaults, and every rule set to
    reject, to impute and to ignore (so each policy's branch is exercised)."""
    out = {"default": learn_contract(df, "churn")}
    for policy in ("reject", "impute", "ignore"):
        out[policy] = learn_contract(df, "churn", on_unknown=policy, on_out_of_range=policy,
                                     on_missing=policy)
    return out


def _token(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper(), f" {text} ", text.title()])


#: Values of one field, as a client or a table may hold them: every JSON type, text that
#: reads as numbers, booleans and dates (and text that nearly does), non-ASCII text, huge
#: and non-finite numbers, nested lists and objects, Python dates and datetimes.
SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0x80), max_size=6),  # non-ASCII only
    st.sampled_from(sorted(rules.TRUE_TOKENS | rules.FALSE_TOKENS)).flatmap(_token),
    st.from_regex(rules.NUMBER, fullmatch=True),
    st.from_regex(rules.ISO_DATETIME, fullmatch=True),
    st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1_000", "\u0663", "1e400", "",
                     "2016-02-30", "1500-01-01", "9999-12-31T23:59:59Z", "0001-01-01T00:00+05:00",
                     "2016-11-08t14:30", "08/11/2016", "None", "null", "NA"]),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.dates(),
)
VALUES: st.SearchStrategy[Any] = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=3), SCALARS, max_size=2),
)


def json_ready(value: Any) -> Any:
    """``value`` as orjson can send it: dates as ISO text, NaN and ±inf as text (JSON has
    neither), integers beyond 64 bits as text (orjson refuses them)."""
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not (
            -(2**63) <= value < 2**64):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@st.composite
def requests(draw: st.DrawFn, rows: list[dict[str, Any]], names: list[str]
             ) -> list[dict[str, Any]]:
    """Real rows with up to three fields fuzzed: each field's values are drawn from a small
    pool, so that a request repeats values (the column-wise path checks each distinct
    value once, and 1 == True == 1.0 share a key there)."""
    n = draw(st.sampled_from([1, 3, 8, 12]))
    fuzzed = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    pools = {name: draw(st.lists(VALUES, min_size=1, max_size=3)) for name in fuzzed}
    start = draw(st.integers(0, len(rows) - n))
    out = []
    for row in rows[start:start + n]:
        record = dict(row)
        for name, pool in pools.items():
            record[name] = draw(st.sampled_from(pool))
        out.append(record)
    return out


def damaged_parquet() -> bytes:
    """A Parquet file whose string column holds bytes that are not UTF-8 (a damaged file:
    the reader's metadata checks pass, the text does not decode)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"contract": ["Month-to-month"] * 4, "tenure": [1, 2, 3, 4]}),
                   sink, compression="none", use_dictionary=False, write_statistics=False)
    body = sink.getvalue()
    at = body.index(b"Month")
    return body[:at] + b"\xff\xfe" + body[at + 2:]
