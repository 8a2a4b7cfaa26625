"""Every registered data source passes mlwright.testing's source suite."""

from __future__ import annotations

import pytest

from mlwright.data._base import SOURCES
from mlwright.testing import SourceCase, SourceConformance
from mlwright.testing.sources import CASES


@pytest.fixture(params=SOURCES.names())
def source_case(request: pytest.FixtureRequest) -> SourceCase:
    if request.param not in CASES:
        pytest.fail(f"the data source {request.param!r} has no conformance case: add one "
                    f"line to mlwright.testing.sources.CASES")
    return CASES[request.param]


class TestRegisteredSources(SourceConformance):
    pass
