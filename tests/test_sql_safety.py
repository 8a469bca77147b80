"""No user input is ever formatted into SQL.

Static: every expression interpolated into an f-string that holds SQL must be in the reviewed
list below (constants, table names, fragments built only from `?` placeholders). A new one
fails this test until someone checks it cannot carry user input and adds it here.
Dynamic: classic injection payloads through every string parameter of every documented route
leave the store unchanged and never cause a server error.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from otlp_builders import llm_trace, request

ROOT = Path(__file__).resolve().parent.parent / "spanlake"
REVIEWED = Path(__file__).with_name("sql_interpolations_reviewed.txt")
_SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "WHERE ", "DROP ", "ATTACH", "LOAD ")


def sql_interpolations() -> set[str]:
    found = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.JoinedStr):
                continue
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if not any(word in text.upper() for word in _SQL_WORDS):
                continue
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    found.add(f"{path.relative_to(ROOT.parent)} | {ast.unparse(value.value)}")
    return found


def reviewed() -> set[str]:
    lines = REVIEWED.read_text().splitlines()
    return {line.split(" #")[0].strip() for line in lines if line.strip() and not line.startswith("#")}


def test_every_sql_interpolation_was_reviewed():
    new = sorted(sql_interpolations() - reviewed())
    assert not new, (
        "SQL built with f-string interpolations nobody reviewed. Bind values as ? parameters; "
        "if an expression is a constant or a placeholder-only fragment, add it to "
        f"{REVIEWED.name}:\n" + "\n".join(new)
    )


PAYLOADS = [
    "' OR '1'='1",
    "x'; DROP TABLE spans; --",
    '"); DELETE FROM spans; --',
    "1 UNION SELECT trace_id FROM spans --",
    "$.\"a\" ') OR 1=1 --",
    "\\'; ATTACH '/tmp/evil.db' AS evil; --",
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from server_process import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("inject")).start()
    for _ in range(3):
        _, spans = llm_trace(4)
        httpx.post(
            f"{server.http_url}/v1/traces",
            content=request(spans).SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        ).raise_for_status()
    yield server
    server.stop()


def span_total(server) -> int:
    return len(httpx.get(f"{server.http_url}/api/spans", params={"limit": 1000}).json()["items"])


def test_injection_through_every_string_query_and_path_parameter(seeded):
    doc = httpx.get(f"{seeded.http_url}/openapi.json").json()
    before = span_total(seeded)
    assert before == 12
    checked = 0
    for path, ops in doc["paths"].items():
        if "get" not in ops or not path.startswith("/api/"):
            continue
        params = ops["get"].get("parameters", [])
        for payload in PAYLOADS[:3]:
            url = path
            for p in params:
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", quote(payload, safe=""))
            query_params = [p for p in params if p["in"] == "query" and p.get("schema", {}).get("type", "string") == "string"]
            for p in query_params or [None]:
                query = {p["name"]: payload} if p else {}
                resp = httpx.get(f"{seeded.http_url}{url}", params=query, timeout=30)
                assert resp.status_code < 500, (path, query, resp.status_code, resp.text[:300])
                checked += 1
    assert checked > 30
    assert span_total(seeded) == before


def test_injection_inside_filter_values_and_keys_matches_nothing(seeded):
    before = span_total(seeded)
    for payload in PAYLOADS:
        for flt in (
            {"field": "name", "op": "eq", "value": payload},
            {"field": f"attributes.{payload}", "op": "exists"},
            {"field": "name", "op": "in", "value": [payload, "x"]},
            {"field": "name", "op": "glob", "value": payload},
            {"field": f"score.{payload}", "op": "gt", "value": 0},
        ):
            resp = httpx.get(f"{seeded.http_url}/api/spans", params={"filter": json.dumps(flt)})
            assert resp.status_code in (200, 400), resp.text
            if resp.status_code == 200:
                assert resp.json()["items"] == [], (flt, "an injection payload matched spans")
    assert span_total(seeded) == before


def test_injection_through_json_bodies_is_stored_verbatim(seeded):
    for payload in PAYLOADS:
        resp = httpx.post(f"{seeded.http_url}/api/datasets", json={"name": payload, "description": payload})
        assert resp.status_code in (201, 400), resp.text
        if resp.status_code == 201:
            got = httpx.get(f"{seeded.http_url}/api/datasets/{resp.json()['id']}").json()
            assert got["name"] == payload
    assert span_total(seeded) == 12
