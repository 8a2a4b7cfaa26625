"""Prometheus metrics of one server (its own registry, so apps in one process do not mix).

With ``--workers N`` every worker counts its own requests; prometheus-client's multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``, set by :func:`multiprocess_dir` before the workers start)
keeps each worker's values in a file, and ``GET /metrics`` sums them, whichever worker
answers the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ENDPOINTS", "MULTIPROC_ENV", "ServerMetrics", "endpoint_label", "exposition",
           "worker_exited"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The paths counted by name; any other path is "other" (a scanner's random URLs must not
# create one time series each).
ENDPOINTS = frozenset({"/v1/predict", "/v1/predict/batch", "/v1/explain", "/v1/model",
                       "/v1/feedback", "/v1/monitor", "/healthz", "/readyz", "/metrics",
                       "/openapi.json", "/docs"})

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("mlwright_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("mlwright_request_latency_seconds",
                                 "Time from request to response", ["endpoint"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.errors = Counter("mlwright_errors", "Requests answered with an error, by kind",
                              ["endpoint", "kind"], registry=r)
        self.batch_rows = Histogram("mlwright_batch_rows", "Rows per model call (micro-batch)",
                                    ["role"], buckets=_ROW_BUCKETS, registry=r)
        self.batch_requests = Histogram(
            "mlwright_batch_requests", "Requests answered by one model call (micro-batch)",
            ["role"], buckets=_ROW_BUCKETS, registry=r)
        self.request_rows = Histogram("mlwright_request_rows", "Records per predict request",
                                      buckets=_ROW_BUCKETS, registry=r)
        self.predictions = Counter("mlwright_predictions", "Records predicted, by model version",
                                   ["model", "version", "role"], registry=r)
        self.swaps = Counter("mlwright_model_swaps", "Hot swaps after an alias moved",
                             ["role"], registry=r)
        self.log_queue = Gauge("mlwright_log_queue_depth",
                               "Entries waiting to be written to the prediction log",
                               multiprocess_mode="livesum", registry=r)
        # Rate limits by caller: an API key's id and name, or "anonymous" (per client
        # address, when no key is required). Each worker process counts its own requests.
        self.rate_limit = Gauge("mlwright_rate_limit_requests",
                                "Requests a caller may send per window, in each worker",
                                ["key", "name"], multiprocess_mode="max", registry=r)
        self.rate_window = Gauge("mlwright_rate_limit_window_seconds",
                                 "The window of each caller's rate limit",
                                 ["key", "name"], multiprocess_mode="max", registry=r)
        self.rate_limited = Counter("mlwright_rate_limited",
                                    "Requests refused with 429 (rate limit), by caller",
                                    ["key", "name"], registry=r)

        self._limits_shown: set[tuple[str, str]] = set()

    def batch_observer(self, role: str) -> Callable[[int, int], None]:
        """What a micro-batcher calls with the rows and requests of each model call."""
        rows = self.batch_rows.labels(role)
        requests = self.batch_requests.labels(role)

        def observe(n_rows: int, n_requests: int) -> None:
            rows.observe(n_rows)
            requests.observe(n_requests)

        return observe

    def show_limits(self, limits: dict[tuple[str, str], tuple[int, int]]) -> None:
        """Publish the rate limits in force: (key, name) -> (requests, window seconds); a
        revoked key's series goes (multiprocess mode cannot remove one: it reads 0)."""
        merged = bool(os.environ.get(MULTIPROC_ENV))
        for labels in self._limits_shown - set(limits):
            for gauge in (self.rate_limit, self.rate_window):
                if merged:
                    gauge.labels(*labels).set(0)
                else:
                    gauge.remove(*labels)
        for labels, (amount, seconds) in limits.items():
            self.rate_limit.labels(*labels).set(amount)
            self.rate_window.labels(*labels).set(seconds)
        self._limits_shown = set(limits)


def endpoint_label(path: str) -> str:
    """The ``endpoint`` label of a request to ``path`` (the docs page's assets count as
    ``/docs``)."""
    if path in ENDPOINTS:
        return path
    return "/docs" if path.startswith("/docs/") else "other"


def exposition(registry: CollectorRegistry) -> bytes:
    """The text ``GET /metrics`` returns: this process's registry, or every worker's."""
    from prometheus_client import generate_latest

    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return generate_latest(registry)
    from prometheus_client.multiprocess import MultiProcessCollector

    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=folder)
    return generate_latest(merged)


def worker_exited() -> None:
    """Drop this worker's live gauges (the queue depth) from the merged view."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(os.getpid())
