"""Small helpers for the dataset tests: an HTTP client per server, unique names, sending spans."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from otlp_builders import request


def client(server: Any, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.http_url, timeout=60, **kwargs)


def unique(prefix: str = "ds") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_dataset(http: httpx.Client, name: str | None = None, **fields: Any) -> dict[str, Any]:
    resp = http.post("/api/datasets", json={"name": name or unique(), **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def add_items(http: httpx.Client, dataset: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resp = http.post(f"/api/datasets/{dataset}/items", json={"items": items})
    assert resp.status_code == 201, resp.text
    return resp.json()["items"]


def list_all(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list route, following `next_cursor` page by page."""
    out: list[dict[str, Any]] = []
    params = dict(params)
    while True:
        resp = http.get(path, params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out += page["items"]
        if not page["next_cursor"]:
            return out
        params["cursor"] = page["next_cursor"]


def items(http: httpx.Client, dataset: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, following cursors."""
    return list_all(http, f"/api/datasets/{dataset}/items", **params)


def send_spans(http: httpx.Client, spans: list[Any], service: str = "test-svc") -> None:
    resp = http.post(
        "/v1/traces",
        content=request(spans, service=service).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert resp.status_code == 200, resp.text


def assert_error(resp: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] and error["message"]
    for word in words:
        assert word in error["message"], error["message"]
    return error
