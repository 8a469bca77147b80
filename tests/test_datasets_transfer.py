"""Import (JSON, JSONL, CSV; all rows or none) and streamed export read back by each format's reader."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

from datasets_client import add_items, assert_error, client, items, new_dataset, unique
from spanlake.datasets import openai_format

CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


def post_import(http, dataset, body, content_type, **params):
    content = body if isinstance(body, bytes) else body.encode()
    return http.post(f"/api/datasets/{dataset}/import", content=content, headers={"content-type": content_type}, params=params)


def test_import_json_jsonl_and_csv(http):
    d = new_dataset(http)["id"]
    rows = [{"input": "q1", "expected_output": "a1", "topic": "t", "tags": ["x"]}, {"input": CHAT, "metadata": {"k": 1}}]
    assert post_import(http, d, json.dumps(rows), "application/json").json() == {"imported": 2}
    jsonl = "\n".join(json.dumps(r) for r in [{"input": {"q": 3}}, {"input": "q4", "expected_output": [1, 2]}]) + "\n\n"
    resp = post_import(http, d, jsonl, "application/x-ndjson")
    assert (resp.status_code, resp.json()) == (201, {"imported": 2})
    table = io.StringIO()
    w = csv.writer(table)
    w.writerow(["input", "expected_output", "topic", "tags", "metadata.source", "metadata.extra"])
    w.writerow(["multi\nline, quoted", "ok", "csv", "a, b", "sheet", '{"deep": true}'])
    w.writerow([json.dumps(CHAT), "", "", '["c,d"]', "", ""])
    assert post_import(http, d, table.getvalue(), "text/csv; charset=utf-8").json() == {"imported": 2}
    got = items(http, d)
    assert [i["input"] for i in got] == ["q1", CHAT, {"q": 3}, "q4", "multi\nline, quoted", CHAT]
    assert got[3]["expected_output"] == [1, 2]
    assert (got[4]["topic"], got[4]["tags"], got[4]["metadata"]) == ("csv", ["a", "b"], {"source": "sheet", "extra": {"deep": True}})
    assert (got[5]["expected_output"], got[5]["tags"], got[5]["metadata"]) == (None, ["c,d"], {})
    assert [v["added"] for v in http.get(f"/api/datasets/{d}/versions").json()["items"]] == [2, 2, 2]  # one version per import


@pytest.mark.parametrize(
    "body,content_type,bad_rows",
    [
        (json.dumps([{"input": "ok"}, {"expected_output": "no input"}, "text", {"input": "x", "tags": 5}]), "application/json", [2, 3, 4]),
        ('{"input": 1}\n\n{"input": \n{"input": 2, "colour": 1}\n', "application/x-ndjson", [3, 4]),
        ("input,topic\nfine,a\n,b\nx,y,z\n", "text/csv", [2, 3]),
    ],
)
def test_import_refuses_every_row_when_one_is_bad(http, body, content_type, bad_rows):
    d = new_dataset(http)["id"]
    add_items(http, d, [{"input": "before"}])
    error = assert_error(post_import(http, d, body, content_type), 422, "nothing was imported")
    assert [r["row"] for r in error["rows"]] == bad_rows
    assert all(r["reason"] for r in error["rows"])
    assert [i["input"] for i in items(http, d)] == ["before"]
    assert_error(post_import(http, d, body, content_type, dry_run="true"), 422)


def test_import_body_errors(http):
    d = new_dataset(http)["id"]
    assert_error(post_import(http, d, "[1", "application/json"), 400, "JSON")
    assert_error(post_import(http, d, '{"input": 1}', "application/json"), 400, "array")
    assert_error(post_import(http, d, "[]", "application/json"), 400, "no rows")
    assert_error(post_import(http, d, "prompt\nx\n", "text/csv"), 400, "prompt")
    assert_error(post_import(http, d, "input", "application/xml"), 415, "Content-Type")
    assert_error(post_import(http, "missing-dataset", "[]", "application/json"), 404)
    resp = post_import(http, d, '[{"input": 1}]', "application/json", dry_run="true")
    assert resp.json() == {"imported": 0, "valid": 1, "dry_run": True}
    assert http.get(f"/api/datasets/{d}").json()["item_count"] == 0


@pytest.fixture(scope="module")
def exported(http):
    """A dataset with every kind of value, changed after a first version."""
    ds = new_dataset(http, unique('..\\odd name ü"x'))
    d = ds["id"]
    first = add_items(
        http,
        d,
        [
            {"input": "plain question", "expected_output": "plain answer", "topic": "t1", "tags": ["a", "b"], "metadata": {"k": 1, "s": "x"}},
            {"input": CHAT, "expected_output": {"role": "assistant", "content": "hello"}, "tags": ["with,comma"]},
            {"input": {"messages": CHAT[1:], "system": "sys"}, "expected_output": {"label": "ok"}},
            {"input": {"not": "messages"}},
        ],
    )
    version_one = http.get(f"/api/datasets/{d}/versions").json()["items"][0]["version"]
    http.patch(f"/api/datasets/{d}/items/{first[0]['id']}", json={"expected_output": "better answer"})
    return ds, first, version_one


def export(http, dataset, fmt, **params):
    resp = http.get(f"/api/datasets/{dataset}/export", params={"format": fmt, **params})
    assert resp.status_code == 200, resp.text
    return resp


def test_export_jsonl_reads_back_and_imports_again(http, exported):
    ds, first, version_one = exported
    resp = export(http, ds["id"], "jsonl")
    assert resp.headers["content-type"] == "application/x-ndjson"
    filename = resp.headers["content-disposition"].split('filename="')[1][:-1]
    assert filename.startswith("odd_name_x-") and filename.endswith(".jsonl")
    assert not set(filename) & set('/\\"ü ')
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert [r["id"] for r in lines] == [i["id"] for i in first]
    assert lines[0]["expected_output"] == "better answer" and lines[1]["input"] == CHAT
    assert lines[0]["metadata"] == {"k": 1, "s": "x"} and lines[0]["tags"] == ["a", "b"]
    old = [json.loads(line) for line in export(http, ds["id"], "jsonl", as_of=version_one).text.splitlines()]
    assert old[0]["expected_output"] == "plain answer"

    copy = new_dataset(http)["id"]
    assert post_import(http, copy, resp.content, "application/x-ndjson").json() == {"imported": 4}
    assert [(i["input"], i["expected_output"]) for i in items(http, copy)] == [(r["input"], r["expected_output"]) for r in lines]


def test_export_csv_reads_back_and_imports_again(http, exported):
    ds, first, _ = exported
    resp = export(http, ds["name"], "csv")
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["id"] for r in rows] == [i["id"] for i in first]
    assert rows[0]["input"] == "plain question" and rows[0]["expected_output"] == "better answer"
    assert (rows[0]["metadata.k"], rows[0]["metadata.s"], rows[0]["tags"]) == ("1", "x", "a,b")
    assert json.loads(rows[1]["input"]) == CHAT and json.loads(rows[1]["tags"]) == ["with,comma"]
    copy = new_dataset(http)["id"]
    assert post_import(http, copy, resp.content, "text/csv").status_code == 201
    again = items(http, copy)
    assert [i["input"] for i in again] == ["plain question", CHAT, {"messages": CHAT[1:], "system": "sys"}, {"not": "messages"}]
    assert again[1]["tags"] == ["with,comma"] and again[0]["metadata"] == {"k": 1, "s": "x"}  # 1 stays a number


def test_export_parquet_loads_in_pyarrow_and_pandas(http, exported):
    ds, first, version_one = exported
    resp = export(http, ds["id"], "parquet")
    assert resp.headers["content-disposition"].endswith('.parquet"')
    table = pq.read_table(io.BytesIO(resp.content))
    assert table.column_names[:3] == ["id", "input", "expected_output"]
    assert table.column("id").to_pylist() == [i["id"] for i in first]
    assert table.column("tags").to_pylist()[0] == ["a", "b"]
    assert json.loads(table.column("metadata").to_pylist()[0]) == {"k": 1, "s": "x"}
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    frame = pytest.importorskip("pandas").read_parquet(io.BytesIO(resp.content))
    assert list(frame["input"])[0] == "plain question" and len(frame) == 4
    old = pq.read_table(io.BytesIO(export(http, ds["id"], "parquet", as_of=version_one).content))
    assert old.column("expected_output").to_pylist()[0] == "plain answer"
    empty = new_dataset(http)["id"]
    assert pq.read_table(io.BytesIO(export(http, empty, "parquet").content)).num_rows == 0


def test_export_openai_chat_format(http, exported):
    ds, _, _ = exported
    resp = export(http, ds["id"], "openai")
    assert resp.headers["x-spanlake-skipped-items"] == "1"  # the item without expected_output
    examples = [json.loads(line) for line in resp.text.splitlines()]
    assert examples == [
        {"messages": [{"role": "user", "content": "plain question"}, {"role": "assistant", "content": "better answer"}]},
        {"messages": [*CHAT, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "system", "content": "sys"}, CHAT[1], {"role": "assistant", "content": '{"label": "ok"}'}]},
    ]


def test_export_errors(http, exported):
    ds, _, _ = exported
    assert_error(http.get(f"/api/datasets/{ds['id']}/export", params={"format": "xml"}), 400, "format")
    assert_error(http.get(f"/api/datasets/{ds['id']}/export", params={"as_of": "soon"}), 400, "as_of")
    assert_error(http.get("/api/datasets/nope-nope/export"), 404)


def test_openai_examples_from_values():
    with pytest.raises(openai_format.Unusable, match="no expected output"):
        openai_format.example("q", None)
    with pytest.raises(openai_format.Unusable, match="no input"):
        openai_format.example(None, "a")
    assert openai_format.example(42, [{"role": "assistant", "content": "x", "tool_calls": []}]) == {
        "messages": [{"role": "user", "content": "42"}, {"role": "assistant", "content": "x"}]
    }
    assert openai_format.example({"role": "user", "content": "q"}, "a")["messages"][0] == {"role": "user", "content": "q"}
