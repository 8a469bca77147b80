"""Scoped API keys through a real server: each scope on each route family, whoami, created_by,
the access log, and that no log line or answer ever holds a key.

One server for the module, with every kind of key entry: an env-var key, a sha256 digest, a
literal key (accepted with a warning) and an --api-key key (every scope).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time

import grpc
from google.rpc import status_pb2
import httpx
import pytest

from otlp_builders import llm_trace, request
from server_process import ServerProcess
from test_ingest_grpc import export

ADMIN = "admin-key-9f2c41d7e3"
INGEST = "ingest-key-5b7e0a9c1d"
READ = "read-key-c3d8f1a26e"
CI = "ci-key-literal-7a41b9e0d2"
UNKNOWN = "unknown-key-0d9e8f7a6b"
ALL_KEYS = (ADMIN, INGEST, READ, CI, UNKNOWN)
CONFIG = {
    "api_keys": [
        {"name": "exporters", "key_env": "TEST_SPANLAKE_INGEST_KEY", "scopes": ["ingest"]},
        {"name": "dashboards", "key_sha256": hashlib.sha256(READ.encode()).hexdigest(), "scopes": ["read"]},
        {"name": "ci", "key": CI, "scopes": ["read", "write"]},
    ],
    "runs": {"poll_seconds": 0.2, "trace_wait_seconds": 0},
}
# Every answer the tests receive, to check at the end that none holds a key.
ANSWERS: list[str] = []


def bearer(key: str | None) -> dict[str, str]:
    return {} if key is None else {"authorization": f"Bearer {key}"}


def call(server: ServerProcess, method: str, path: str, key: str | None, **kw) -> httpx.Response:
    resp = httpx.request(method, f"{server.http_url}{path}", headers={**bearer(key), **kw.pop("headers", {})}, timeout=30, **kw)
    ANSWERS.append(json.dumps(dict(resp.headers)) + resp.text)
    return resp


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scoped")
    config = tmp / "spanlake.yaml"
    config.write_text(json.dumps(CONFIG))
    srv = ServerProcess(tmp / "data", "--config", str(config), "--api-key", ADMIN, "--log-level", "debug",
                        env={"TEST_SPANLAKE_INGEST_KEY": INGEST}).start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.stop()


@pytest.fixture(scope="module")
def trace(server):
    """A trace sent with the ingest key: (trace id, spans)."""
    trace_id, spans = llm_trace(2)
    export(server.grpc_target, request(spans), metadata=(("authorization", f"Bearer {INGEST}"),))
    return trace_id, spans


def openapi_routes(server: ServerProcess) -> list[tuple[str, str]]:
    """(method, path) of every /api route, with example path values."""
    doc = httpx.get(f"{server.http_url}/openapi.json").json()
    out = []
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path
        for name in ("trace_id", "span_id", "dataset", "item_id", "batch_id", "name", "run_id"):
            url = url.replace("{" + name + "}", "0" * 31 + "1" if name == "trace_id" else "0" * 15 + "1" if name == "span_id" else "x")
        out.extend((method.upper(), url) for method in ops)
    return out


def assert_denied(resp: httpx.Response, scope: str, key_name: str) -> None:
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "permission_denied" and error["missing_scope"] == scope
    assert f"{scope!r} scope" in error["message"] and key_name in error["message"]


def test_otlp_grpc_needs_the_ingest_scope(server, trace):
    _, spans = llm_trace(1)
    for key in (INGEST, ADMIN):
        export(server.grpc_target, request(spans), metadata=(("authorization", f"Bearer {key}"),))
    for key, code in ((READ, grpc.StatusCode.PERMISSION_DENIED), (CI, grpc.StatusCode.PERMISSION_DENIED),
                      (UNKNOWN, grpc.StatusCode.UNAUTHENTICATED), (None, grpc.StatusCode.UNAUTHENTICATED)):
        metadata = () if key is None else (("authorization", f"Bearer {key}"),)
        with pytest.raises(grpc.RpcError) as info:
            export(server.grpc_target, request(spans), metadata=metadata)
        assert info.value.code() == code, key
        if code == grpc.StatusCode.PERMISSION_DENIED:
            assert "'ingest' scope" in info.value.details()
        assert all(k not in info.value.details() for k in ALL_KEYS)


def test_otlp_http_needs_the_ingest_scope(server):
    _, spans = llm_trace(1)
    body = request(spans).SerializeToString()
    headers = {"content-type": "application/x-protobuf"}
    for key in (INGEST, ADMIN):
        assert call(server, "POST", "/v1/traces", key, content=body, headers=headers).status_code == 200
    # A protobuf exporter gets a google.rpc.Status it can parse, as for every OTLP refusal.
    for key, name in ((READ, "dashboards"), (CI, "ci")):
        resp = call(server, "POST", "/v1/traces", key, content=body, headers=headers)
        assert resp.status_code == 403 and resp.headers["content-type"] == "application/x-protobuf"
        status = status_pb2.Status.FromString(resp.content)
        assert status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert "'ingest' scope" in status.message and name in status.message
    for key in (UNKNOWN, None):
        resp = call(server, "POST", "/v1/traces", key, content=body, headers=headers)
        assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
        assert status_pb2.Status.FromString(resp.content).code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    # A JSON exporter gets the same refusal as JSON.
    resp = call(server, "POST", "/v1/traces", READ, content=b"{}", headers={"content-type": "application/json"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "permission_denied"
    assert "'ingest' scope" in resp.json()["error"]["message"]


def test_every_read_route_needs_the_read_scope(server, trace):
    reads = [path for method, path in openapi_routes(server) if method == "GET" and path != "/api/whoami"]
    assert "/api/traces" in reads and "/api/datasets/x/export" in reads
    for path in reads:
        assert_denied(call(server, "GET", path, INGEST), "read", "exporters")
        assert call(server, "GET", path, UNKNOWN).status_code == 401
        for key in (READ, CI, ADMIN):
            assert call(server, "GET", path, key).status_code not in (401, 403), (path, key)
    trace_id, _ = trace
    assert len(call(server, "GET", f"/api/traces/{trace_id}", READ).json()["spans"]) == 2


def test_every_write_route_needs_the_write_scope(server):
    writes = [(m, p) for m, p in openapi_routes(server) if m not in ("GET", "HEAD")]
    assert ("POST", "/api/datasets") in writes and ("DELETE", "/api/datasets/x") in writes
    for method, path in writes:
        assert_denied(call(server, method, path, READ, json={}), "write", "dashboards")
        assert_denied(call(server, method, path, INGEST, json={}), "write", "exporters")
        assert call(server, method, path, None, json={}).status_code == 401
        # Past the key check: whatever the route says about an empty body.
        assert call(server, method, path, CI, json={}).status_code not in (401, 403), (method, path)


def test_pages_need_read_and_page_forms_need_write(server):
    """Web UI pages follow the same table: GET read, other methods write, /login open."""
    for path in ("/", "/traces"):
        denied = call(server, "GET", path, INGEST)
        assert denied.status_code == 403 and "lacks the &#39;read&#39; scope" in denied.text
        resp = call(server, "GET", path, None, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=")
        assert call(server, "GET", path, READ).status_code == 200
    assert_denied(call(server, "POST", "/datasets/golden", READ, data={"name": "x"}), "write", "dashboards")
    assert call(server, "GET", "/login", None).status_code == 200


def login(http: httpx.Client, key: str) -> str:
    """Sign in through the UI's form; returns the page's CSRF token for later mutations."""
    token = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/login").text).group(1)
    resp = http.post("/login", data={"key": key, "csrf_token": token, "next": "/traces"})
    assert resp.status_code == 303, resp.text
    return token


def test_a_ui_session_has_the_scopes_of_the_key_it_signed_in_with(server):
    with httpx.Client(base_url=server.http_url, timeout=30) as browser:
        token = login(browser, READ)
        assert browser.get("/api/whoami").json() == {"name": "dashboards", "scopes": ["read"], "authenticated": True}
        assert browser.get("/traces").status_code == 200
        denied = browser.post("/api/datasets", json={"name": "from-ui"}, headers={"x-csrf-token": token})
        ANSWERS.append(denied.text)
        assert_denied(denied, "write", "dashboards")
    with httpx.Client(base_url=server.http_url, timeout=30) as browser:
        # A key that can open no page is refused at the login form, saying why; no session is made.
        token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/login").text).group(1)
        refused = browser.post("/login", data={"key": INGEST, "csrf_token": token, "next": "/traces"})
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
        assert "key &#39;exporters&#39; lacks the &#39;read&#39; scope" in refused.text
        assert "spanlake_session" not in browser.cookies
        assert browser.get("/traces").status_code == 303
    page = call(server, "GET", "/traces", INGEST)  # the key itself on a page: a page for a person, not JSON
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "key &#39;exporters&#39; lacks the &#39;read&#39; scope" in page.text
    assert_denied(call(server, "GET", "/api/traces", INGEST), "read", "exporters")
    with httpx.Client(base_url=server.http_url, timeout=30) as browser:
        token = login(browser, CI)
        created = browser.post("/api/datasets", json={"name": "from-ui"}, headers={"x-csrf-token": token})
        assert created.status_code == 201, created.text
        item = browser.post("/api/datasets/from-ui/items", json={"items": [{"input": "q"}]}, headers={"x-csrf-token": token})
        assert item.json()["items"][0]["created_by"] == "ci"


def test_whoami_names_the_key_and_its_scopes(server):
    expected = {
        ADMIN: ("api-key-1", ["ingest", "read", "write"]),
        INGEST: ("exporters", ["ingest"]),
        READ: ("dashboards", ["read"]),
        CI: ("ci", ["read", "write"]),
    }
    for key, (name, scopes) in expected.items():
        resp = call(server, "GET", "/api/whoami", key)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"name": name, "scopes": scopes, "authenticated": True}
    assert call(server, "GET", "/api/whoami", UNKNOWN).status_code == 401


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while (value := check()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def test_created_by_records_the_key_name(server, trace):
    trace_id, _ = trace
    assert call(server, "POST", "/api/datasets", CI, json={"name": "by-ci"}).status_code == 201
    item = call(server, "POST", "/api/datasets/by-ci/items", CI, json={"items": [{"input": "q"}]}).json()["items"][0]
    assert item["created_by"] == "ci"
    patched = call(server, "PATCH", f"/api/datasets/by-ci/items/{item['id']}", ADMIN, json={"topic": "t"}).json()
    assert patched["created_by"] == "api-key-1"  # each version records who wrote it
    captured = call(server, "POST", "/api/datasets/by-ci/capture", CI, json={"trace_ids": [trace_id]}).json()
    assert captured["captured"] == 1
    listed = call(server, "GET", "/api/datasets/by-ci/items", READ).json()["items"]
    assert sorted(i["created_by"] for i in listed) == ["api-key-1", "ci"]

    score = call(server, "POST", "/api/scores", CI, json={"trace_id": trace_id, "name": "manual", "value": 1})
    assert score.status_code == 201 and score.json()["created_by"] == "ci"
    batch = call(server, "POST", "/api/scores/batch", ADMIN, json={"scorer": "no_errors", "trace_ids": [trace_id]}).json()
    wait_for(lambda: call(server, "GET", f"/api/scores/batches/{batch['batch_id']}", READ).json()["status"] == "completed" or None)
    scores = call(server, "GET", "/api/scores", READ, params={"trace_id": trace_id}).json()["items"]
    assert {s["name"]: s["created_by"] for s in scores} == {"manual": "ci", "no_errors": "api-key-1"}

    run = call(server, "POST", "/api/datasets/by-ci/runs", CI, json={"mode": "client"})
    assert run.status_code == 202 and run.json()["created_by"] == "ci"
    assert call(server, "GET", f"/api/datasets/by-ci/runs/{run.json()['id']}", READ).json()["created_by"] == "ci"


def test_access_log_names_the_key_and_never_holds_one(server, trace):
    """Last in the module: stops the server and reads everything it wrote."""
    call(server, "GET", "/api/traces", READ, params={"service": "not-logged-xyz"})
    call(server, "GET", "/api/traces", INGEST)
    call(server, "GET", "/api/traces", UNKNOWN)
    server.stop()
    log = server.output()
    assert "GET /api/traces 200 key=dashboards" in log
    assert "not-logged-xyz" not in log  # the path only: a query string is the client's text
    assert "GET /api/traces 403 key=exporters" in log
    assert "GET /api/traces 401 key=-" in log
    assert "POST /api/datasets 201 key=ci" in log
    assert "grpc Export ok key=exporters" in log and "grpc Export permission_denied key=dashboards" in log
    assert "api_keys[2] (ci): the key is written in the config file" in log  # the literal key's warning
    assert len(ANSWERS) > 50
    for key in ALL_KEYS:
        assert key not in log, "a key reached the log"
        assert not [a for a in ANSWERS if key in a], "a key reached an API answer"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "x", "key_env": "TEST_SPANLAKE_UNSET_VAR", "scopes": ["read"]}, "api_keys[0] (x).key_env: environment variable TEST_SPANLAKE_UNSET_VAR is not set"),
        ({"name": "x", "key_sha256": "ab" * 32, "scopes": ["admin"]}, "api_keys[0] (x).scopes: 'admin' is not a scope"),
        ({"name": "x", "scopes": ["read"]}, "api_keys[0] (x): give exactly one of key_env, key_sha256 or key"),
    ],
)
def test_a_bad_key_entry_stops_startup_with_one_line(tmp_path, entry, message):
    config = tmp_path / "spanlake.yaml"
    config.write_text(json.dumps({"api_keys": [entry]}))
    out = subprocess.run(
        [sys.executable, "-m", "spanlake", "serve", "--config", str(config), "--data", str(tmp_path / "d"), "--http-port", "0", "--grpc-port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
