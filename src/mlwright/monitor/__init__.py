"""monitor stage of the loop: drift, data quality and live performance of a served model.

``run_monitor(database_url, model, reference=run_folder, window="5000")`` reads a window of
the prediction log (:mod:`mlwright.store`) and returns a :class:`MonitorReport` (``to_dict``,
``write_html``). Detectors are pluggable through :mod:`mlwright.monitor._base`.
"""

from __future__ import annotations

from mlwright.monitor._base import (
    ColumnReference,
    ColumnWindow,
    Detector,
    DetectorResult,
    detector_names,
    get_detector,
    register_detector,
)
from mlwright.monitor.alerts import Alert
from mlwright.monitor.core import run_monitor
from mlwright.monitor.reference import Reference, load_reference
from mlwright.monitor.report import MonitorReport
from mlwright.monitor.routes import monitor_router

__all__ = ["Alert", "ColumnReference", "ColumnWindow", "Detector", "DetectorResult",
           "MonitorReport", "Reference", "detector_names", "get_detector", "load_reference",
           "monitor_router", "register_detector", "run_monitor"]
