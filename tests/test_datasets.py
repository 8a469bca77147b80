"""Datasets and their versioned items over HTTP: CRUD by id or name, as_of, versions, bulk, listing."""

from __future__ import annotations

import pytest

from datasets_client import add_items, assert_error, client, items, new_dataset, unique


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


def test_dataset_lifecycle_by_id_and_name(http):
    name = unique("life")
    created = new_dataset(http, name, description="prod regressions", metadata={"owner": "ml", "tags": [1, {"a": None}]})
    assert created["id"] and created["name"] == name and created["item_count"] == 0
    assert created["metadata"] == {"owner": "ml", "tags": [1, {"a": None}]}
    assert_error(http.post("/api/datasets", json={"name": name}), 409, name)

    assert http.get(f"/api/datasets/{created['id']}").json()["name"] == name
    assert http.get(f"/api/datasets/{name}").json()["id"] == created["id"]

    renamed = unique("life")
    resp = http.patch(f"/api/datasets/{name}", json={"name": renamed, "metadata": {"v": 2}, "description": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == renamed and resp.json()["metadata"] == {"v": 2} and resp.json()["description"] is None
    assert_error(http.get(f"/api/datasets/{name}"), 404, name)
    other = new_dataset(http)
    assert_error(http.patch(f"/api/datasets/{other['id']}", json={"name": renamed}), 409)

    assert http.delete(f"/api/datasets/{renamed}").status_code == 204
    assert_error(http.get(f"/api/datasets/{created['id']}"), 404)
    assert_error(http.delete(f"/api/datasets/{renamed}"), 404)
    assert new_dataset(http, renamed)["id"] != created["id"]  # a deleted name is free again


def test_list_counts_search_and_pages(http):
    stem = unique("list")
    for n in range(3):
        ds = new_dataset(http, f"{stem}-{n}")
        if n:
            add_items(http, ds["id"], [{"input": f"q{i}"} for i in range(n)])
    first = http.get("/api/datasets", params={"search": stem.upper(), "limit": 2}).json()
    assert [d["name"] for d in first["items"]] == [f"{stem}-0", f"{stem}-1"]
    assert [d["item_count"] for d in first["items"]] == [0, 1]
    second = http.get("/api/datasets", params={"search": stem, "limit": 2, "cursor": first["next_cursor"]}).json()
    assert [(d["name"], d["item_count"]) for d in second["items"]] == [(f"{stem}-2", 2)]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "body,words",
    [
        ({}, ["name"]),
        ({"name": ""}, ["name"]),
        ({"name": "a/b"}, ["'/'"]),
        ({"name": " padded"}, ["whitespace"]),
        ({"name": "x", "metadata": [1]}, ["metadata", "object"]),
        ({"name": "x", "colour": "red"}, ["colour"]),
        ({"name": "123e4567-e89b-12d3-a456-426614174000"}, ["id"]),
    ],
)
def test_dataset_bodies_are_checked(http, body, words):
    assert_error(http.post("/api/datasets", json=body), 400, *words)


def test_items_versions_and_as_of(http):
    ds = new_dataset(http)
    d = ds["name"]
    first, second = add_items(
        http, d, [{"input": "2+2?", "expected_output": "4", "topic": "math"}, {"input": {"messages": [{"role": "user", "content": "hi"}]}}]
    )
    assert first["created_at"] == first["updated_at"] and first["valid_to"] is None
    added_at = first["valid_from"]

    patched = http.patch(f"/api/datasets/{d}/items/{first['id']}", json={"expected_output": "four", "tags": ["fix"]})
    assert patched.status_code == 200, patched.text
    v2 = patched.json()
    assert v2["id"] == first["id"] and v2["expected_output"] == "four" and v2["tags"] == ["fix"]
    assert v2["input"] == "2+2?" and v2["topic"] == "math" and v2["created_at"] == first["created_at"]
    assert v2["valid_from"] > added_at
    same = http.patch(f"/api/datasets/{d}/items/{first['id']}", json={"expected_output": "four"}).json()
    assert same["valid_from"] == v2["valid_from"]  # nothing changed: no new version

    assert http.delete(f"/api/datasets/{d}/items/{second['id']}").status_code == 204
    assert_error(http.get(f"/api/datasets/{d}/items/{second['id']}"), 404)
    assert_error(http.delete(f"/api/datasets/{d}/items/{second['id']}"), 404)

    versions = http.get(f"/api/datasets/{d}/versions").json()["items"]
    assert [(v["added"], v["updated"], v["deleted"], v["item_count"]) for v in versions] == [(0, 0, 1, 1), (0, 1, 0, 2), (2, 0, 0, 2)]
    deleted_at, updated_at, created_at = (v["version"] for v in versions)
    assert created_at == added_at and updated_at == v2["valid_from"]

    def state(as_of):
        return {i["id"]: i["expected_output"] for i in items(http, d, as_of=as_of)}

    assert state("2000-01-01T00:00:00Z") == {}
    assert state(created_at) == {first["id"]: "4", second["id"]: None}
    assert state(updated_at) == {first["id"]: "four", second["id"]: None}  # after the update, before the delete
    assert state(deleted_at) == {first["id"]: "four"}
    assert state(None) == state(deleted_at)
    old = http.get(f"/api/datasets/{d}/items/{first['id']}", params={"as_of": created_at}).json()
    assert old["expected_output"] == "4" and old["valid_to"] == updated_at
    gone = http.get(f"/api/datasets/{d}/items/{second['id']}", params={"as_of": created_at}).json()
    assert gone["input"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert http.get(f"/api/datasets/{d}").json()["item_count"] == 1
    page = http.get(f"/api/datasets/{d}/versions", params={"limit": 2}).json()
    rest = http.get(f"/api/datasets/{d}/versions", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [v["version"] for v in page["items"] + rest["items"]] == [deleted_at, updated_at, created_at]


def test_item_listing_sorts_filters_and_pages(http):
    d = new_dataset(http)["id"]
    trace = "ab" * 16
    added = add_items(
        http,
        d,
        [
            {"input": "a", "topic": "beta", "tags": ["x"]},
            {"input": "b", "tags": ["x", "y"], "source_trace_id": trace, "source_span_id": "cd" * 8},
            {"input": "c", "topic": "alpha"},
            {"input": "d", "topic": "", "tags": ["y"]},
        ],
    )
    assert [i["input"] for i in items(http, d, limit=1)] == ["a", "b", "c", "d"]  # created_at, then id
    assert [i["input"] for i in items(http, d, order="desc", limit=3)] == ["d", "c", "b", "a"]
    assert [i["input"] for i in items(http, d, sort="topic", limit=1)] == ["c", "a", "b", "d"]  # empty topics last
    assert [i["input"] for i in items(http, d, sort="topic", order="desc", limit=2)][:2] == ["a", "c"]
    assert [i["input"] for i in items(http, d, topic="alpha")] == ["c"]
    assert [i["input"] for i in items(http, d, topic="")] == ["b", "d"]
    assert [i["input"] for i in http.get(f"/api/datasets/{d}/items", params=[("tag", "x"), ("tag", "y")]).json()["items"]] == ["b"]
    assert [i["id"] for i in items(http, d, source_trace_id=trace)] == [added[1]["id"]]
    assert_error(http.get(f"/api/datasets/{d}/items", params={"sort": "size"}), 400, "sort")
    assert_error(http.get(f"/api/datasets/{d}/items", params={"as_of": "yesterday"}), 400, "as_of")
    assert_error(http.get(f"/api/datasets/{d}/items", params={"cursor": "bm9wZQ"}), 400, "cursor")


def test_pages_read_one_instant(http):
    d = new_dataset(http)["id"]
    add_items(http, d, [{"input": n} for n in range(5)])
    first = http.get(f"/api/datasets/{d}/items", params={"limit": 2}).json()
    later = add_items(http, d, [{"input": "late"}])
    http.delete(f"/api/datasets/{d}/items/{first['items'][0]['id']}")
    rest = items(http, d, limit=2, cursor=first["next_cursor"])
    assert [i["input"] for i in first["items"] + rest] == [0, 1, 2, 3, 4]  # neither the new nor a shifted item
    assert later[0]["input"] in [i["input"] for i in items(http, d)]


def test_bulk_update_and_delete(http):
    d = new_dataset(http)["id"]
    a, b, c = add_items(http, d, [{"input": 1, "tags": ["old", "keep"]}, {"input": 2}, {"input": 3, "topic": "t"}])
    resp = http.post(f"/api/datasets/{d}/items/bulk", json={"ids": [a["id"], b["id"], "missing"], "set": {"topic": "triage"}, "add_tags": ["new"], "remove_tags": ["old"]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"updated": 2, "unknown_ids": ["missing"]}
    now = {i["input"]: i for i in items(http, d)}
    assert (now[1]["topic"], now[1]["tags"], now[1]["id"]) == ("triage", ["keep", "new"], a["id"])
    assert (now[2]["topic"], now[2]["tags"]) == ("triage", ["new"])
    assert now[3]["topic"] == "t"
    resp = http.post(f"/api/datasets/{d}/items/bulk", json={"ids": [b["id"], c["id"]], "delete": True})
    assert resp.json() == {"deleted": 2, "unknown_ids": []}
    assert [i["input"] for i in items(http, d)] == [1]
    versions = http.get(f"/api/datasets/{d}/versions").json()["items"]
    assert [(v["added"], v["updated"], v["deleted"]) for v in versions] == [(0, 0, 2), (0, 2, 0), (3, 0, 0)]
    assert_error(http.post(f"/api/datasets/{d}/items/bulk", json={"ids": [a["id"]], "set": {"input": 1}}), 400, "set.input")
    assert_error(http.post(f"/api/datasets/{d}/items/bulk", json={"ids": [a["id"]], "delete": True, "add_tags": ["x"]}), 400)
    assert_error(http.post(f"/api/datasets/{d}/items/bulk", json={"ids": []}), 400, "ids")


@pytest.mark.parametrize(
    "body,status,words",
    [
        ({"items": []}, 400, ["items"]),
        ({"items": [{"expected_output": "x"}]}, 400, ["items[0].input"]),
        ({"items": [{"input": "x", "tags": "a"}]}, 400, ["items[0].tags"]),
        ({"items": [{"input": "x", "source_span_id": "xyz"}]}, 400, ["source_span_id"]),
        ({"items": [{"input": "x", "extra": 1}]}, 400, ["items[0].extra"]),
        ({"items": [{"input": "x", "source_trace_id": "ab" * 16, "source_span_id": "cd" * 8}] * 2}, 409, ["items[1]"]),
    ],
)
def test_item_bodies_are_checked(http, body, status, words):
    d = new_dataset(http)["id"]
    assert_error(http.post(f"/api/datasets/{d}/items", json=body), status, *words)
    assert http.get(f"/api/datasets/{d}").json()["item_count"] == 0


def test_values_the_store_cannot_hold_are_refused(http):
    d = new_dataset(http)["id"]
    for raw in ('{"items": [{"input": NaN}]}', '{"items": [{"input": "\\ud800"}]}', '{"items": [{"input": 1e999999}]}'):
        resp = http.post(f"/api/datasets/{d}/items", content=raw, headers={"content-type": "application/json"})
        assert_error(resp, 400, "JSON")
    assert_error(http.post("/api/datasets", json={"name": "bad\u0000name"}), 400, "name")
    assert http.get(f"/api/datasets/{d}").json()["item_count"] == 0


def test_item_patch_and_missing_things(http):
    d = new_dataset(http)["id"]
    (item,) = add_items(http, d, [{"input": "x", "source_trace_id": "ab" * 16, "source_span_id": "ef" * 8}])
    assert_error(http.patch(f"/api/datasets/{d}/items/{item['id']}", json={"source_span_id": "00" * 8}), 400, "source_span_id")
    assert_error(http.patch(f"/api/datasets/{d}/items/{item['id']}", json={}), 400, "nothing")
    assert_error(http.patch(f"/api/datasets/{d}/items/{item['id']}", json={"input": None}), 400, "input")
    assert_error(http.post(f"/api/datasets/{d}/items", json={"items": [{"input": "y", "source_span_id": "ef" * 8}]}), 409, "already")
    assert_error(http.get(f"/api/datasets/{d}/items/nope"), 404)
    assert_error(http.get("/api/datasets/no-such-dataset/items"), 404, "no-such-dataset")
    assert_error(http.get(f"/api/datasets/{d}/versions", params={"limit": 0}), 400, "limit")
