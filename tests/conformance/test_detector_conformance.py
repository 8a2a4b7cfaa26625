"""Every registered drift detector passes mlwright.testing's detector suite."""

from __future__ import annotations

import pytest

from mlwright.monitor._base import DETECTORS, Detector, get_detector
from mlwright.testing import DetectorConformance


@pytest.fixture(params=DETECTORS.names())
def detector(request: pytest.FixtureRequest) -> Detector:
    return get_detector(request.param)


class TestRegisteredDetectors(DetectorConformance):
    pass
