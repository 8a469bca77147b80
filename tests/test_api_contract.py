"""The HTTP contract: one error shape everywhere, every route documented, no 5xx under fuzzing."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest


def test_every_route_is_in_openapi(shared_server):
    from spanlake.api.app import routes
    from spanlake.server import Services

    doc = httpx.get(f"{shared_server.http_url}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}

    class _Stub:  # routes() only reads these attributes to build endpoints
        receiver = metrics = None

    served = {
        (route.path, method)
        for route in routes(_Stub())  # type: ignore[arg-type]
        for method in (route.methods or ())
        if method != "HEAD"
    }
    assert served <= documented, f"undocumented routes: {sorted(served - documented)}"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method} {path} documents no responses"
    assert Services  # the stub mirrors Services' attributes used by routes()


@pytest.mark.parametrize(
    "method,path,kwargs",
    [
        ("GET", "/api/traces/zzz", {}),
        ("GET", "/api/traces", {"params": {"filter": "[1"}}),
        ("GET", "/api/nope", {}),
        ("DELETE", "/api/traces", {}),
        ("POST", "/v1/traces", {"content": b"{", "headers": {"content-type": "application/json"}}),
    ],
)
def test_errors_have_one_shape(shared_server, method, path, kwargs):
    resp = httpx.request(method, f"{shared_server.http_url}{path}", **kwargs)
    assert 400 <= resp.status_code < 500
    error = resp.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]


def test_schemathesis_finds_no_server_errors(make_server):
    """Property-based requests against every documented operation: no 5xx, documented statuses only."""
    server = make_server()
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{server.http_url}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
            "--max-examples", "15",
            "--phases", "examples,fuzzing",
            "--request-timeout", "20",
            "--suppress-health-check", "all",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
