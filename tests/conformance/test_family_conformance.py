"""Every registered model family passes mlwright.testing's family suite."""

from __future__ import annotations

import pytest

from mlwright.search._base import FAMILIES, ModelFamily, get_family
from mlwright.testing import FamilyConformance


@pytest.fixture(params=FAMILIES.names())
def family(request: pytest.FixtureRequest) -> ModelFamily:
    return get_family(request.param)


class TestRegisteredFamilies(FamilyConformance):
    pass
