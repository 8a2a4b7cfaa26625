"""The suite's tables load as the protocol says, the large ones apart from the everyday ones."""

from __future__ import annotations

import pytest

from mlwright.datasets import LARGE, SUITE, load_suite, suite_names
from mlwright.exceptions import ConfigError


def test_the_large_tables_are_not_in_the_everyday_suite() -> None:
    assert set(suite_names(large=True)) == {"fertility", "military"}
    assert not set(LARGE) & set(SUITE)
    assert not set(suite_names(large=True)) & set(suite_names())


@pytest.mark.parametrize(("name", "classes"), [("fertility", {"no", "yes"}),
                                               ("military", {"army", "navy", "air force",
                                                             "marine corps"})])
def test_a_large_table_loads_with_its_target(name: str, classes: set[str]) -> None:
    spec = LARGE[name]
    df = load_suite(name, nrows=2000)
    assert len(df) == 2000 and df[spec.target].notna().all()
    assert set(df[spec.target]) <= classes and len(set(df[spec.target])) >= 2
    assert spec.task == ("binary" if len(classes) == 2 else "multiclass")


def test_an_unknown_name_lists_every_table() -> None:
    with pytest.raises(ConfigError, match="military"):
        load_suite("nope")
