"""The four extension points share one registry shape (mlwright._registry.Registry)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from mlwright._registry import Registry
from mlwright.data._base import SOURCES, registered_sources
from mlwright.exceptions import ConfigError
from mlwright.loop._base import TRIGGERS
from mlwright.monitor._base import DETECTORS
from mlwright.search._base import FAMILIES


@pytest.mark.parametrize(("registry", "builtins"), [
    (FAMILIES, {"catboost", "extra_trees", "hist_gb", "knn", "lightgbm",
                "linear", "mlp", "random_forest", "xgboost"}),
    (DETECTORS, {"chisquare", "jensenshannon", "ks", "psi", "wasserstein"}),
    (SOURCES, {"csv", "dataframe", "duckdb", "jsonl", "parquet", "sql"}),
    (TRIGGERS, {"drift", "new_data", "performance", "schedule", "webhook"}),
], ids=lambda r: getattr(r, "kind", ""))
def test_every_registry_loads_its_builtins_and_names_them_in_errors(
        registry: Registry, builtins: set[str]) -> None:
    assert builtins <= set(registry.names())
    for name in builtins:
        assert registry.get(name).name == name
    with pytest.raises(ConfigError) as err:
        registry.get("no-such-thing")
    message = str(err.value)
    assert "no-such-thing" in message and registry.kind in message
    assert all(name in message for name in builtins)
    assert registry.register_with in message


class _Thing:
    name: ClassVar[str] = "thing"


def test_a_later_registration_replaces_and_moves_last() -> None:
    registry: Registry[_Thing] = Registry("thing", builtins="mlwright",
                                          register_with="tests.register")

    @registry.register
    class First(_Thing):
        name = "a"

    @registry.register
    class Second(_Thing):
        name = "b"

    @registry.register
    class Again(_Thing):
        name = "a"

    assert registry.classes() == [Second, Again] and registry.get("a") is Again
    assert "a" in registry and len(registry) == 2 and list(registry) == ["a", "b"]
    with pytest.raises(ConfigError, match="needs a non-empty string class attribute"):
        registry.register(type("Nameless", (), {}))
    with pytest.raises(ConfigError, match=r"loop\.triggers names 'zzz', which is not a thing"):
        registry.get("zzz", setting="loop.triggers")


def test_sources_are_tried_newest_first() -> None:
    names = [cls.name for cls in registered_sources()]
    assert names[0] == "duckdb" and names[-1] == "dataframe"
