"""Every registered loop trigger passes mlwright.testing's trigger suite."""

from __future__ import annotations

import pytest

from mlwright.loop._base import TRIGGERS
from mlwright.testing import TriggerCase, TriggerConformance
from mlwright.testing.triggers import CASES


@pytest.fixture(params=TRIGGERS.names())
def trigger_case(request: pytest.FixtureRequest) -> TriggerCase:
    if request.param not in CASES:
        pytest.fail(f"the trigger {request.param!r} has no conformance case: add one line "
                    f"to mlwright.testing.triggers.CASES")
    return CASES[request.param]


class TestRegisteredTriggers(TriggerConformance):
    pass
