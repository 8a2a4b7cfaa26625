"""Prometheus metrics of one server (its own registry, so apps in one process do not mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServerMetrics"]

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
        self.request_rows = Histogram("mlwright_request_rows", "Records per predict request",
                                      buckets=_ROW_BUCKETS, registry=r)
        self.predictions = Counter("mlwright_predictions", "Records predicted, by model version",
                                   ["model", "version", "role"], registry=r)
        self.swaps = Counter("mlwright_model_swaps", "Hot swaps after an alias moved",
                             ["role"], registry=r)
        self.log_queue = Gauge("mlwright_log_queue_depth",
                               "Entries waiting to be written to the prediction log",
                               registry=r)
