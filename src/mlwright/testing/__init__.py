"""Conformance suites for mlwright's extension points, in the style of Optuna's
``optuna/testing``: one suite per extension point, which every implementation must pass.

Each suite is a pytest class whose tests take one fixture naming the implementation:

================  ==================  ==========================================
suite             fixture             extension point
================  ==================  ==========================================
FamilyConformance  ``family``         search/_base.py ModelFamily, register_family
DetectorConformance ``detector``      monitor/_base.py Detector, register_detector
SourceConformance  ``source_case``    data/_base.py DataSource, register_source
TriggerConformance ``trigger_case``   loop/_base.py Trigger, register_trigger
================  ==================  ==========================================

``tests/conformance`` parametrises each fixture over its registry, so a registered
implementation is tested without touching the tests (a source or trigger also needs its one
line in :data:`~mlwright.testing.sources.CASES` / :data:`~mlwright.testing.triggers.CASES`:
how to write a table for it, how to make it fire). A plugin outside this repository tests
itself with a subclass and one fixture::

    class TestMyFamily(FamilyConformance):
        @pytest.fixture
        def family(self) -> ModelFamily:
            return MyFamily()

This package imports pytest; the library never imports it.
"""

from mlwright.testing.detectors import DetectorConformance
from mlwright.testing.families import FamilyConformance
from mlwright.testing.sources import SourceCase, SourceConformance
from mlwright.testing.triggers import TriggerCase, TriggerConformance

__all__ = ["DetectorConformance", "FamilyConformance", "SourceCase", "SourceConformance",
           "TriggerCase", "TriggerConformance"]
