"""The outbound policy on dataset run targets, through real servers and real HTTP endpoints.

A "forbidden" endpoint listens on 127.0.0.2, which the machine can reach but the default policy
(loopback names and 127.0.0.1 / ::1 only) does not allow: when it counts no calls, the policy,
not the network, stopped them.
"""

from __future__ import annotations

import asyncio
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from datasets_client import add_items, assert_error, client, new_dataset, unique
from run_target import RunTarget, results, wait_run
from server_process import ServerProcess, free_port
from thread_server import ThreadServer

from spanlake.outbound import OutboundPolicy, OutboundRefused, PolicyTransport

RUNS = {"poll_seconds": 0.2, "trace_wait_seconds": 0}


class Endpoints:
    """A redirector on 127.0.0.1 (`/to?url=...` answers 307 there) and a forbidden target on 127.0.0.2."""

    def __init__(self) -> None:
        self.port = free_port()
        self.forbidden_port = free_port()
        self.forbidden_calls = 0

    async def redirect(self, req: Request) -> Response:
        return RedirectResponse(req.query_params["url"], status_code=307)

    async def forbidden(self, req: Request) -> Response:
        self.forbidden_calls += 1
        return JSONResponse({"output": "should never be called"})

    def __enter__(self) -> "Endpoints":
        self._servers = [
            ThreadServer(Starlette(routes=[Route("/to", self.redirect, methods=["POST"])]), self.port, "redirector"),
            ThreadServer(Starlette(routes=[Route("/agent", self.forbidden, methods=["POST"])]), self.forbidden_port,
                         "forbidden target", host="127.0.0.2"),
        ]
        for s in self._servers:
            s.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self._servers:
            s.stop()

    @property
    def forbidden_url(self) -> str:
        return f"http://127.0.0.2:{self.forbidden_port}/agent"

    def via(self, url: str) -> str:
        return str(httpx.URL(f"http://127.0.0.1:{self.port}/to", params={"url": url}))


@pytest.fixture(scope="module")
def target():
    with RunTarget() as t:
        yield t


@pytest.fixture(scope="module")
def endpoints():
    with Endpoints() as e:
        yield e


def serve(tmp, config: dict) -> ServerProcess:
    path = tmp / "spanlake.yaml"
    path.write_text(json.dumps(config))
    return ServerProcess(tmp / "data", "--config", str(path)).start()


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    """A server with the default policy."""
    server = serve(tmp_path_factory.mktemp("outbound"), {"runs": RUNS})
    with client(server) as c:
        yield c
    server.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A server whose policy allows the name localhost, but not its address, and port 80 by wildcard."""
    server = serve(tmp_path_factory.mktemp("outbound-strict"),
                   {"runs": RUNS, "outbound": {"allow": ["http://localhost:*", "http://*:80/*"]}})
    with client(server) as c:
        yield c
    server.stop()


def start_run(http: httpx.Client, url: str) -> tuple[str, httpx.Response]:
    name = unique("out")
    new_dataset(http, name)
    add_items(http, name, [{"input": "one"}, {"input": "two"}])
    return name, http.post(f"/api/datasets/{name}/runs", json={"target": {"url": url}})


def test_a_loopback_target_is_allowed_by_default(http, target):
    for url in (target.url, target.url.replace("127.0.0.1", "localhost")):
        name, resp = start_run(http, url)
        assert resp.status_code == 202, resp.text
        run = wait_run(http, name, resp.json()["id"])
        assert (run["status"], run["completed"], run["failed"]) == ("completed", 2, 0)


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.2:{port}/agent", ["matches no outbound.allow entry"]),
    ("http://169.254.169.254/latest/meta-data/", ["169.254.169.254:80/latest/meta-data/", "outbound.allow"]),
    ("http://[fe80::1]:8080/", ["outbound.allow"]),
    ("http://example.com/agent", ["example.com:80/agent"]),
])
def test_a_refused_target_is_a_400_naming_the_rule(http, endpoints, url, words):
    name, resp = start_run(http, url.format(port=endpoints.forbidden_port))
    error = assert_error(resp, 400, "target.url", *words)
    assert error["code"] == "outbound_refused" and error["rule"] == "outbound.allow"
    assert http.get(f"/api/datasets/{name}/runs").json()["items"] == []  # nothing was created
    assert endpoints.forbidden_calls == 0


def test_redirects_are_followed_only_to_allowed_urls(http, target, endpoints):
    name, resp = start_run(http, endpoints.via(target.url))
    assert resp.status_code == 202, resp.text
    run = wait_run(http, name, resp.json()["id"])
    assert (run["completed"], run["failed"]) == (2, 0)
    assert sorted(r["output"] for r in results(http, name, run["id"])) == ["one", "two"]

    name, resp = start_run(http, endpoints.via(endpoints.forbidden_url))
    assert resp.status_code == 202, resp.text  # the redirect is only known when it is answered
    run = wait_run(http, name, resp.json()["id"])
    assert (run["completed"], run["failed"]) == (0, 2)
    for row in results(http, name, run["id"]):
        assert row["error"].startswith("refused by the outbound policy:") and "127.0.0.2" in row["error"], row
    assert endpoints.forbidden_calls == 0


def test_a_name_that_resolves_to_a_refused_address(strict, target):
    name, resp = start_run(strict, target.url.replace("127.0.0.1", "localhost"))
    error = assert_error(resp, 400, "localhost resolves to", "a loopback address", "http://127.0.0.1:")
    assert error["rule"] == "outbound.loopback"
    # Metadata addresses need an entry without wildcards: http://*:80/* names them, yet is not enough.
    name, resp = start_run(strict, "http://169.254.169.254/latest/meta-data/")
    error = assert_error(resp, 400, "link-local/metadata", "no wildcard")
    assert error["rule"] == "outbound.link-local/metadata"


def test_the_transport_connects_to_the_address_it_checked(monkeypatch, target):
    """DNS rebinding: a name that resolves to an allowed address, then to a metadata address.

    The resolver is the outside service here, patched to answer differently per call. The first
    request reaches the target at the address checked (with the name in its Host header); the
    second is refused before any connection."""
    answers = iter(["127.0.0.1", "169.254.169.254"])

    def resolver(host, port, *args, **kwargs):
        assert host == "rebind.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    policy = OutboundPolicy.from_sections({"outbound": {"allow": ["http://rebind.test:*", "http://127.0.0.1:*"]}})
    url = f"http://rebind.test:{target.port}/agent"

    async def two_calls() -> tuple[httpx.Response, Exception]:
        async with httpx.AsyncClient(transport=PolicyTransport(policy, httpx.AsyncHTTPTransport())) as http:
            first = await http.post(url, json={"input": "hi", "item_id": "rebind-1"})
            try:
                await http.post(url, json={"input": "hi", "item_id": "rebind-2"})
            except OutboundRefused as exc:
                return first, exc
            raise AssertionError("the second call was not refused")

    # On its own thread: a browser test earlier in the session may leave an event loop running here.
    with ThreadPoolExecutor(1) as pool:
        first, refused = pool.submit(asyncio.run, two_calls()).result()
    assert first.status_code == 200 and first.json() == {"output": "hi"}
    assert target.headers[-1]["host"] == f"rebind.test:{target.port}"
    assert "rebind.test resolves to 169.254.169.254" in str(refused)
    assert target.calls["rebind-2"] == 0
