"""Generated requests to every operation of /openapi.json: no 5xx, and every answer matches the
status, content type and schema the document declares for it (the document is generated from the
route declarations, so this checks the declarations against what the handlers really return)."""

from __future__ import annotations

from typing import Any

import httpx

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from otlp_builders import llm_trace, request

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12  # per operation and strategy; the whole run stays well under a minute


def seed(base: str) -> dict[str, str]:
    """One of each thing a path can name, so generated requests also reach real resources."""
    trace_id, spans = llm_trace(2)
    httpx.post(f"{base}/v1/traces", content=request(spans).SerializeToString(),
               headers={"content-type": "application/x-protobuf"}, timeout=30).raise_for_status()
    with httpx.Client(base_url=base, timeout=30) as http:
        dataset = http.post("/api/datasets", json={"name": "contract"}).json()["name"]
        item = http.post(f"/api/datasets/{dataset}/items", json={"items": [
            {"input": "q", "expected_output": "a", "source_trace_id": trace_id, "source_span_id": spans[0].span_id.hex()}
        ]}).json()["items"][0]["id"]
        assert http.post("/api/scores", json={"trace_id": trace_id, "name": "ok", "value": 1}).status_code == 201
        run = http.post(f"/api/datasets/{dataset}/runs", json={"name": "client-run"}).json()["name"]
        batch = http.post("/api/scores/batch", json={"scorer": "no_errors", "trace_ids": [trace_id]}).json()["batch_id"]
    return {"trace_id": trace_id, "span_id": spans[0].span_id.hex(), "dataset": dataset, "item_id": item,
            "run_id": run, "batch_id": batch, "name": "no_errors"}


def test_every_operation_keeps_its_declared_contract(make_server):
    server = make_server()
    known = seed(server.http_url)
    schema = schemathesis.openapi.from_url(f"{server.http_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 45
    problems: list[str] = []

    for operation in operations:
        strategy = operation.as_strategy()
        names = [p.name for p in operation.path_parameters]
        # DELETE runs with generated path values only: on the seeded ones it would remove what
        # the other operations read, and a 404 after that proves nothing about them.
        if names and operation.method.upper() != "DELETE":
            strategy = st.one_of(strategy, operation.as_strategy(path_parameters={n: known[n] for n in names}))

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def exercise(case: Any) -> None:
            try:
                case.call_and_validate(base_url=server.http_url, checks=CHECKS, timeout=30)
            except FailureGroup as exc:
                problems.append(f"{operation.method.upper()} {operation.path}: {exc}")

        exercise()
    assert not problems, "\n".join(problems[:10])


