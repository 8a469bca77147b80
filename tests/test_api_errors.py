"""Error bodies must render whatever client text they quote."""

from __future__ import annotations

import httpx


def test_a_field_name_with_a_lone_surrogate_gets_a_400_that_quotes_it(shared_server):
    # Valid JSON text whose key decodes to a lone UTF-16 surrogate; the message quotes the key.
    body = b'{"\\ud800oops": 1, "name": "n", "trace_id": "0af7651916cd43dd8448eb211c80319c"}'
    resp = httpx.post(
        f"{shared_server.http_url}/api/scores", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "bad_request"
    assert "\ud800oops: unknown field" in error["message"]


def test_every_api_route_refuses_an_unknown_query_parameter_by_name(shared_server):
    """Each documented /api operation, sent `?bogus=1` beside its own parameters, answers 400 naming
    it: a misspelt parameter (`limt`) is never silently ignored."""
    doc = httpx.get(f"{shared_server.http_url}/openapi.json").json()
    fill = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
    checked = 0
    for template, ops in doc["paths"].items():
        if not template.startswith("/api/"):
            continue
        path = template
        for name in [part[1:-1] for part in template.split("/") if part.startswith("{")]:
            path = path.replace("{" + name + "}", fill.get(name, "x"))
        for method in ops:
            resp = httpx.request(method.upper(), f"{shared_server.http_url}{path}", params={"bogus": "1", "limt": "5"}, timeout=30)
            assert resp.status_code == 400, (method, template, resp.status_code, resp.text)
            error = resp.json()["error"]
            assert error["code"] == "bad_request"
            assert "bogus, limt" in error["message"] and template in error["message"], error["message"]
            assert error["unknown_parameters"] == ["bogus", "limt"]
            checked += 1
    assert checked > 40


def test_documented_parameters_pass_the_guard(shared_server):
    """The guard takes its names from /openapi.json: each documented parameter gets past it."""
    resp = httpx.get(f"{shared_server.http_url}/api/traces", params={"limit": "2", "service": "nope"}, timeout=30)
    assert resp.status_code == 200
    resp = httpx.get(f"{shared_server.http_url}/api/datasets/none/items", params={"metadata.k": "v"}, timeout=30)
    assert resp.status_code == 404  # past the guard: the dataset does not exist


def test_every_json_body_refuses_an_unknown_field_by_name(shared_server):
    """Each operation whose body is a JSON object answers 400 naming a field it does not know,
    with the fields it does, before it looks anything up (the body models forbid extras)."""
    doc = httpx.get(f"{shared_server.http_url}/openapi.json").json()
    fill = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
    checked = 0
    for template, ops in doc["paths"].items():
        path = template
        for name in [part[1:-1] for part in template.split("/") if part.startswith("{")]:
            path = path.replace("{" + name + "}", fill.get(name, "x"))
        for method, op in ops.items():
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = schema.get("$ref", "")
            body_schema = doc["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
            if body_schema.get("type") != "object" or body_schema.get("additionalProperties") is not False:
                continue
            resp = httpx.request(method.upper(), f"{shared_server.http_url}{path}", json={"colour": "red"}, timeout=30)
            assert resp.status_code == 400, (method, template, resp.status_code, resp.text)
            error = resp.json()["error"]
            assert error["code"] == "bad_request"
            assert error["message"].startswith("colour: unknown field; expected "), error["message"]
            expected = error["message"].split("expected ", 1)[1].split(", ")
            assert expected == list(body_schema["properties"]), (template, expected)
            checked += 1
    assert checked >= 11
