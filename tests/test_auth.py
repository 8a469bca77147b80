"""API keys on both protocols: every protected route refuses a missing or wrong key, health stays open."""

from __future__ import annotations

import grpc
import httpx
import pytest

from otlp_builders import llm_trace, request
from test_ingest_grpc import export

KEY = "s3cret-key"
OTHER = "second-key"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    from server_process import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("auth"), "--api-key", KEY, "--api-key", OTHER).start()
    yield server
    server.stop()


def protected_get_routes(server) -> list[str]:
    """Every GET route of the OpenAPI document under /api, with example path values."""
    doc = httpx.get(f"{server.http_url}/openapi.json").json()
    paths = []
    for path, ops in doc["paths"].items():
        if path.startswith("/api/") and "get" in ops:
            paths.append(
                path.replace("{trace_id}", "0" * 31 + "1").replace("{span_id}", "0" * 15 + "1")
                .replace("{dataset}", "x").replace("{item_id}", "x").replace("{batch_id}", "x")
                .replace("{name}", "x").replace("{run_id}", "x")
            )
    return paths


def test_every_api_route_needs_a_key(keyed):
    paths = protected_get_routes(keyed)
    assert "/api/traces" in paths and "/api/spans" in paths
    for path in paths:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY}, {"authorization": f"Basic {KEY}"}):
            resp = httpx.get(f"{keyed.http_url}{path}", headers=headers)
            assert resp.status_code == 401, (path, headers, resp.status_code)
            assert resp.json()["error"]["code"] == "unauthenticated"
        ok = httpx.get(f"{keyed.http_url}{path}", headers={"authorization": f"Bearer {OTHER}"})
        assert ok.status_code != 401, path


def test_every_api_method_needs_a_key(keyed):
    """POST/PATCH/DELETE too: refused before the body is even read."""
    doc = httpx.get(f"{keyed.http_url}/openapi.json").json()
    checked = 0
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path
        for name in ("trace_id", "span_id", "dataset", "item_id", "batch_id", "name", "run_id"):
            url = url.replace("{" + name + "}", "0" * 31 + "1" if name == "trace_id" else "0" * 15 + "1" if name == "span_id" else "x")
        for method in ops:
            resp = httpx.request(method.upper(), f"{keyed.http_url}{url}", json={})
            assert resp.status_code == 401, (method, path, resp.status_code)
            checked += 1
    assert checked >= 10


def test_otlp_http_needs_a_key(keyed):
    _, spans = llm_trace(2)
    body = request(spans).SerializeToString()
    headers = {"content-type": "application/x-protobuf"}
    assert httpx.post(f"{keyed.http_url}/v1/traces", content=body, headers=headers).status_code == 401
    ok = httpx.post(f"{keyed.http_url}/v1/traces", content=body, headers={**headers, "authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200


def test_otlp_grpc_needs_a_key(keyed):
    trace_id, spans = llm_trace(2)
    with pytest.raises(grpc.RpcError) as info:
        export(keyed.grpc_target, request(spans))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        export(keyed.grpc_target, request(spans), metadata=(("authorization", "Bearer nope"),))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    export(keyed.grpc_target, request(spans), metadata=(("authorization", f"Bearer {KEY}"),))
    resp = httpx.get(f"{keyed.http_url}/api/traces/{trace_id}", headers={"authorization": f"Bearer {KEY}"})
    assert len(resp.json()["spans"]) == 2


def test_health_and_metrics_stay_open_by_default(keyed):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert httpx.get(f"{keyed.http_url}{path}").status_code == 200


def test_metrics_follow_the_flag(make_server):
    server = make_server("--api-key", KEY, "--metrics-require-key", "true")
    assert httpx.get(f"{server.http_url}/metrics").status_code == 401
    assert httpx.get(f"{server.http_url}/metrics", headers={"authorization": f"Bearer {KEY}"}).status_code == 200
    assert httpx.get(f"{server.http_url}/healthz").status_code == 200


def test_key_from_environment_and_never_logged(make_server):
    server = make_server(env={"SPANLAKE_API_KEY": "env-key-1,env-key-2"})
    assert httpx.get(f"{server.http_url}/api/traces").status_code == 401
    assert httpx.get(f"{server.http_url}/api/traces", headers={"authorization": "Bearer env-key-2"}).status_code == 200
    httpx.get(f"{server.http_url}/api/traces", headers={"authorization": "Bearer env-key-1-wrong"})
    server.stop()
    log = server.output()
    assert "env-key-1" not in log and "env-key-2" not in log
