"""Every route, sent bad input, answers a clear 4xx in the one error shape and changes nothing.

The routes come from the app itself (`spanlake.api.app.routes`, pages and static files included),
so a route added without bad-input cases fails `test_every_route_has_bad_input_cases` instead of
going unchecked. One server (with an API key, so the login form has something to refuse) holds a
trace, datasets with items, a running and a completed run, a score, a finished scoring batch and a
rule, so each path names things that exist and each case changes one thing to make it wrong
(tests/bad_input_cases.py).

The one error shape: `{"error": {"code", "message"}}` for JSON; a google.rpc.Status for OTLP
protobuf requests; for pages, the page with the message in its alert. The message must name the
field, parameter or id at fault, and a write route's refusal must leave every watched listing as
it was.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from google.rpc import status_pb2
from starlette.routing import Mount, Route

from bad_input_cases import (
    DATASET, KEY, NO_BODY, NO_INPUT, OTHER_DATASET, FREE_TEXT, QUERY_CASES, RULE, SCORER, VALID,
    Bad, Seeded, json_body_cases, path_cases, route_cases, valid_body, valid_query,
)
from otlp_builders import llm_trace, request
from server_process import ServerProcess

WRITES = {"POST", "PATCH", "DELETE"}
OTLP = {"/v1/traces", "/v1/logs"}
RULES_YAML = f"""
rules:
  - name: {RULE}
    dataset: walk-captured
    when: {{field: name, op: eq, value: never-matches}}
"""


def served_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, read from the app's own route list."""
    from spanlake.api.app import routes

    class _Stub:  # routes() only reads these attributes to build the OTLP endpoints
        receiver = metrics = None

    out = []
    for route in routes(_Stub()):  # type: ignore[arg-type]
        if isinstance(route, Route):
            out += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
        elif isinstance(route, Mount):
            out.append(("GET", route.path + "/{path}"))
        else:
            raise AssertionError(f"a route of a kind this walk does not know: {route!r}")
    return out


ROUTES = served_routes()


@dataclass
class Walk:
    server: ServerProcess
    http: httpx.Client
    seeded: Seeded
    doc: dict[str, Any]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, sent again once if the pooled connection was dropped: after a 500 the
        server closes the connection, and that failure is the earlier case's, not this one's."""
        try:
            return self.http.request(method, path, **kwargs)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            return self.http.request(method, path, **kwargs)


def _ok(resp: httpx.Response, status: int) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def _seed(http: httpx.Client) -> Seeded:
    trace_id, spans = llm_trace(3)
    body = request(spans).SerializeToString()
    _ok(http.post("/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}), 200)
    for name in (DATASET, OTHER_DATASET):
        _ok(http.post("/api/datasets", json={"name": name}), 201)
    new_items = {"items": [{"input": "q1", "expected_output": "a1"}, {"input": "q2"}]}
    items = _ok(http.post(f"/api/datasets/{DATASET}/items", json=new_items), 201)["items"]
    runs = f"/api/datasets/{DATASET}/runs"
    for name in ("base", "head"):
        _ok(http.post(runs, json={"mode": "client", "name": name}), 202)
    _ok(http.post(f"{runs}/base/results", json={"results": [{"item_id": items[0]["id"], "output": "a1"}]}), 200)
    _ok(http.post(f"{runs}/base/complete"), 202)
    _ok(http.post("/api/scores", json={"name": "walk-score", "trace_id": trace_id, "value": 1}), 201)
    batch_id = _ok(http.post("/api/scores/batch", json={"scorer": SCORER, "trace_ids": [trace_id]}), 202)["batch_id"]
    deadline = time.monotonic() + 30
    while not (
        _ok(http.get(f"/api/scores/batches/{batch_id}"), 200)["status"] == "completed"
        and _ok(http.get(f"{runs}/base"), 200)["status"] == "completed"
    ):
        assert time.monotonic() < deadline, "the seeded batch and run did not finish"
        time.sleep(0.05)
    return Seeded(trace_id=trace_id, span_id=spans[0].span_id.hex(), item_id=items[0]["id"],
                  other_item_id=items[1]["id"], batch_id=batch_id)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("walk")
    rules = root / "rules.yaml"
    rules.write_text(RULES_YAML)
    with ServerProcess(root / "data", "--api-key", KEY, "--rules", str(rules)) as server:
        with httpx.Client(base_url=server.http_url, headers={"authorization": f"Bearer {KEY}"}, timeout=30) as http:
            seeded = _seed(http)
            yield Walk(server, http, seeded, _ok(http.get("/openapi.json"), 200))


# Cases ----------------------------------------------------------------------------------------


def _operation(doc: dict[str, Any], method: str, template: str) -> dict[str, Any] | None:
    return doc["paths"].get(template, {}).get(method.lower())


def _query_names(op: dict[str, Any] | None) -> list[str]:
    return [p["name"] for p in (op or {}).get("parameters", []) if p["in"] == "query"]


def _takes_json_object(template: str, op: dict[str, Any] | None) -> bool:
    content = (op or {}).get("requestBody", {}).get("content", {})
    return "application/json" in content and template not in OTLP and not template.endswith("/import")


def own_cases(walk: Walk, method: str, template: str) -> list[Bad]:
    """The cases that come from what this route reads: path and query parameters, body, its own."""
    op = _operation(walk.doc, method, template)
    cases = [c for name in re.findall(r"\{(\w+)", template) for c in path_cases(name, template)]
    cases += [c for name in _query_names(op) for c in QUERY_CASES.get(name, [])]
    if _takes_json_object(template, op):
        cases += json_body_cases(valid_body(method, template, walk.seeded))
    return cases + route_cases(walk.seeded).get((method, template), [])


def universal_cases(method: str, template: str) -> list[Bad]:
    """Wrong method (once per path) and, on /api, an unknown query parameter."""
    cases = []
    if (method, template) == next(r for r in ROUTES if r[1] == template):
        cases.append(Bad("method not allowed", 405, "not allowed", code="method_not_allowed", method="PUT", json=NO_BODY))
    if template.startswith("/api/"):
        cases.append(Bad("unknown query parameter", 400, "bogus", params={"bogus": "1"}))
    return cases


# Sending and judging --------------------------------------------------------------------------


def _url_path(walk: Walk, method: str, template: str, case: Bad) -> str:
    values = {**walk.seeded.fill(template), **case.path}
    path = re.sub(r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe="%"), template)
    params = {**valid_query(method, template), **case.params}
    return path + ("?" + urlencode(params) if params else "")


def _body(walk: Walk, method: str, template: str, case: Bad) -> tuple[bytes | None, str | None]:
    if case.form is not None:
        return urlencode(case.form).encode(), "application/x-www-form-urlencoded"
    if case.content is not None:
        return case.content, case.content_type
    value = valid_body(method, template, walk.seeded) if case.json is VALID else case.json
    if value is None or value is NO_BODY:
        return None, case.content_type
    return json.dumps(value).encode(), case.content_type or "application/json"


def _send_declared_length(walk: Walk, method: str, path: str, case: Bad, content_type: str | None) -> httpx.Response:
    """Headers that promise `declared_length` bytes, then one byte: the server must refuse from the
    header alone, without waiting for (or buffering) the rest."""
    conn = http.client.HTTPConnection("127.0.0.1", walk.server.http_port, timeout=30)
    try:
        conn.putrequest(method, path)
        conn.putheader("Authorization", f"Bearer {KEY}")
        conn.putheader("Content-Length", str(case.declared_length))
        if content_type:
            conn.putheader("Content-Type", content_type)
        conn.endheaders(b"{")
        resp = conn.getresponse()
        return httpx.Response(resp.status, headers=resp.getheaders(), content=resp.read())
    finally:
        conn.close()


def send(walk: Walk, method: str, template: str, case: Bad) -> httpx.Response:
    path = _url_path(walk, method, template, case)
    content, content_type = _body(walk, method, template, case)
    method = case.method or method
    if case.declared_length is not None:
        return _send_declared_length(walk, method, path, case, content_type or "application/json")
    headers = dict(case.headers)
    if content_type:
        headers["content-type"] = content_type
    return walk.request(method, path, content=content, headers=headers)


def _page_alert(resp: httpx.Response) -> str:
    alerts = re.findall(r'<(p|div)\b([^>]*\brole="alert"[^>]*)>(.*?)</\1>', resp.text, re.S)
    shown = [html.unescape(re.sub(r"<[^>]+>", " ", text)) for _, attrs, text in alerts if "hidden" not in attrs]
    return " ".join(" ".join(shown).split())


def error_message(resp: httpx.Response, template: str, case: Bad) -> str:
    """The message of an answer in the one error shape for this kind of route (or AssertionError)."""
    media = resp.headers.get("content-type", "").split(";")[0]
    if template in OTLP and case.content_type == "application/x-protobuf" and case.method is None:
        assert media == "application/x-protobuf", f"OTLP protobuf refusal answered {media}"
        status = status_pb2.Status.FromString(resp.content)
        assert status.code != 0 and status.message, f"empty google.rpc.Status: {status}"
        return status.message
    is_page = not template.startswith(("/api/", "/v1/", "/static/")) and template not in (
        "/healthz", "/readyz", "/metrics", "/openapi.json")
    if is_page and case.method is None:
        assert media == "text/html", f"a page answered {media}"
        text = _page_alert(resp)
        assert text, "the page shows no alert"
        return text
    assert media == "application/json", f"answered {media}: {resp.text[:200]}"
    error = resp.json()["error"]
    assert isinstance(error.get("code"), str) and error["code"], f"no error code: {error}"
    assert isinstance(error.get("message"), str) and error["message"].strip(), f"no message: {error}"
    if case.code is not None:
        assert error["code"] == case.code, f"code {error['code']!r}, expected {case.code!r}"
    return error["message"]


# What must not change: every listing a refused write could touch.
def watched(seeded: Seeded) -> list[str]:
    ds = f"/api/datasets/{DATASET}"
    return [
        "/api/datasets", ds, f"{ds}/items?limit=1000", f"{ds}/versions", f"/api/datasets/{OTHER_DATASET}",
        f"{ds}/runs", f"{ds}/runs/{seeded.run}/results", f"{ds}/runs/{seeded.done_run}", "/api/scores?limit=1000",
        "/api/scores/batches", "/api/traces?limit=1000", "/api/spans?limit=1000", "/api/rules",
    ]


def snapshot(walk: Walk) -> dict[str, Any]:
    """Each watched listing's answer; a listing that stops answering 200 has changed too."""
    return {path: (resp.status_code, resp.text) for path in watched(walk.seeded) if (resp := walk.request("GET", path))}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [path for path in before if before[path] != after[path]]


# Tests ----------------------------------------------------------------------------------------


def test_every_route_has_bad_input_cases(walk):
    """A new route, parameter or body cannot slip past the walk: each needs its cases here."""
    documented = {(m.upper(), p) for p, ops in walk.doc["paths"].items() for m in ops}
    assert documented <= set(ROUTES), f"documented but not served: {sorted(documented - set(ROUTES))}"
    problems = []
    for method, template in ROUTES:
        route = f"{method} {template}"
        own = own_cases(walk, method, template)
        if not own and (method, template) not in NO_INPUT:
            problems.append(f"{route}: no bad-input case (add some, or list it in NO_INPUT if it reads no input)")
        if own and (method, template) in NO_INPUT:
            problems.append(f"{route}: in NO_INPUT but has cases")
        op = _operation(walk.doc, method, template)
        for name in _query_names(op):
            if name not in QUERY_CASES and name not in FREE_TEXT:
                problems.append(f"{route}: query parameter {name} has no bad value in QUERY_CASES (or list it in FREE_TEXT)")
        for name in re.findall(r"\{(\w+)", template):
            if not path_cases(name, template):
                problems.append(f"{route}: path parameter {name} has no bad value in path_cases")
        if _takes_json_object(template, op) and not (
            valid_body(method, template, walk.seeded) and route_cases(walk.seeded).get((method, template))
        ):
            problems.append(f"{route}: a JSON body route needs a valid_body and its own wrong-field cases")
    assert not problems, "\n".join(problems)


def _check(walk: Walk, method: str, template: str, case: Bad) -> str | None:
    """Send one case; what is wrong with the answer, or None."""
    try:
        resp = send(walk, method, template, case)
    except httpx.TransportError as exc:
        return f"the connection broke instead of an answer: {exc!r}"
    try:
        assert resp.status_code < 500, f"server error {resp.status_code}: {resp.text[:300]}"
        assert resp.status_code == case.status, f"status {resp.status_code}, expected {case.status}: {resp.text[:300]}"
        message = error_message(resp, template, case)
        assert case.names.lower() in message.lower(), f"message does not name {case.names!r}: {message[:300]}"
    except AssertionError as exc:
        return str(exc).split("\nassert ")[0]
    return None


@pytest.mark.parametrize("method,template", ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
def test_bad_input_is_refused_clearly_and_changes_nothing(walk, method, template):
    cases = own_cases(walk, method, template) + universal_cases(method, template)

    def where(case: Bad) -> str:
        return f"{case.label} ({case.method or method} {_url_path(walk, method, template, case)[:120]})"

    before = snapshot(walk) if method in WRITES else None
    failures = [f"{where(c)}: {problem}" for c in cases if (problem := _check(walk, method, template, c))]
    if before is not None and _changes(before, snapshot(walk)):
        # Something changed: send the cases again one at a time to say which.
        for case in cases:
            before = snapshot(walk)
            _check(walk, method, template, case)
            changed = _changes(before, snapshot(walk))
            if changed:
                failures.append(f"{where(case)}: changed {', '.join(changed)} (bad input must change nothing)")
    if any("server error" in f or "connection broke" in f for f in failures):
        failures.append("server log (end):\n" + walk.server.output()[-4000:])
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"])
def test_a_json_body_declared_as_nothing_or_plain_text_is_read(walk, content_type):
    """What curl -d and a browser's fetch() send by default is no claim about the format."""
    name = f"declared-{(content_type or 'none').split(';')[0].replace('/', '-')}"
    headers = {"content-type": content_type} if content_type else {}
    resp = walk.request("POST", "/api/datasets", content=json.dumps({"name": name}).encode(), headers=headers)
    assert resp.status_code == 201, resp.text
    assert walk.http.get(f"/api/datasets/{name}").json()["name"] == name
