"""The HTTP contract: one error shape everywhere, every route documented, no 5xx under fuzzing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def test_every_route_is_in_openapi(shared_server):
    from starlette.routing import Route

    from spanlake.api.app import routes
    from spanlake.services import Services
    from spanlake.ui.routes import routes as page_routes

    doc = httpx.get(f"{shared_server.http_url}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}

    class _Stub:  # routes() only reads these attributes to build endpoints
        receiver = metrics = None

    # Web UI pages answer HTML for people; OpenAPI documents the machine-facing routes.
    pages = {(route.path, method) for route in page_routes() if isinstance(route, Route) for method in route.methods or ()}
    served = {
        (route.path, method)
        for route in routes(_Stub())  # type: ignore[arg-type]
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD" and (route.path, method) not in pages
    }
    assert served, "no API routes found"
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


def test_every_json_route_limits_its_body(shared_server):
    """A 17 MB body to any JSON route is refused with 413, not buffered."""
    doc = httpx.get(f"{shared_server.http_url}/openapi.json").json()
    big = b"[" + b"1," * (17 * 1024 * 1024 // 2) + b"1]"
    checked = 0
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path.replace("{trace_id}", "0" * 31 + "1").replace("{span_id}", "0" * 15 + "1")
        for name in ("dataset", "item_id", "batch_id", "name", "run_id"):
            url = url.replace("{" + name + "}", "x")
        for method, op in ops.items():
            if method not in ("post", "patch", "put") or "requestBody" not in op:
                continue
            resp = httpx.request(method.upper(), f"{shared_server.http_url}{url}", content=big,
                                 headers={"content-type": "application/json"}, timeout=60)
            assert resp.status_code in (404, 413), (method, path, resp.status_code)
            checked += 1
    assert checked >= 3


def test_binds_loopback_by_default(shared_server):
    """Started without --host, both listeners accept on 127.0.0.1 only."""
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, and ::ffff:127.0.0.1 (grpc)
    listening: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # LISTEN
                address, port = local.rsplit(":", 1)
                listening.setdefault(int(port, 16), set()).add(address)
    for port in (shared_server.http_port, shared_server.grpc_port):
        assert listening.get(port) and listening[port] <= loopback, f"port {port} listens on {listening.get(port)}"


def test_dockerfile_runs_as_non_root():
    dockerfile = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
