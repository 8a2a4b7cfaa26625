"""schemathesis against the served OpenAPI document: no 5xx, no response off its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from serve_helpers import LiveServer

from mlwright.serve import create_app

# slow: property-based requests against the served OpenAPI spec.
pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_schemathesis_finds_no_server_error(run_a: Path, tmp_path: Path) -> None:
    app = create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'log.db'}")
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    with LiveServer(app) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        labels = {op.label for op in operations}
        assert {"POST /v1/predict", "POST /v1/feedback", "POST /v1/predict/batch",
                "GET /v1/model", "GET /metrics"} <= labels
        def property_of(operation: Any) -> Any:
            @hypothesis.given(case=operation.as_strategy())
            @settings(max_examples=30, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                response = case.call_and_validate(base_url=server.url, checks=CHECKS)
                statuses.setdefault(operation.label, set()).add(response.status_code)

            return check

        for operation in operations:
            try:
                property_of(operation)()
            except Exception as exc:  # collect every operation's failure, then report
                failures.append(f"{operation.label}: {exc}")
    if failures:
        pytest.fail("\n\n".join(failures)[:8000])
    # Generated requests reached every operation, and the predict endpoint both answered
    # and refused (the schema's records are valid; envelopes and bodies vary).
    assert set(statuses) == labels
    assert 200 in statuses["POST /v1/predict"] and 200 in statuses["POST /v1/feedback"]
