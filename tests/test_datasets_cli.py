"""`spanlake datasets list | import | export` as users run it: a subprocess against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from datasets_client import client, items

KEY = "cli-secret"


def run(server, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SPANLAKE_API_KEY"}
    if key:
        env["SPANLAKE_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "spanlake", "datasets", args[0], "--url", server.http_url, *args[1:]],
        capture_output=True, text=True, timeout=120, env=env,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from server_process import ServerProcess

    with ServerProcess(tmp_path_factory.mktemp("cli"), "--api-key", KEY) as s:
        yield s


def test_import_list_export_round_trip(server, tmp_path):
    source = tmp_path / "golden.csv"
    source.write_text('input,expected_output,topic\nwhat is 2+2?,4,math\n"[{""role"": ""user"", ""content"": ""hi""}]",hello,chat\n')
    done = run(server, "import", "golden", str(source))
    assert done.returncode == 0, done.stderr
    assert "created dataset golden" in done.stderr and "imported 2 items" in done.stderr

    listed = run(server, "list")
    assert listed.returncode == 0, listed.stderr
    name, count, _, dataset_id = listed.stdout.splitlines()[0].split("\t")
    assert (name, count) == ("golden", "2")
    as_json = [json.loads(line) for line in run(server, "list", "--json", "--search", "GOLD").stdout.splitlines()]
    assert [d["id"] for d in as_json] == [dataset_id]

    target = tmp_path / "out.parquet"
    done = run(server, "export", "golden", "--format", "parquet", "-o", str(target))
    assert done.returncode == 0, done.stderr
    table = pq.read_table(target)
    assert table.column("input").to_pylist() == ["what is 2+2?", '[{"role":"user","content":"hi"}]']
    assert table.column("expected_output").to_pylist() == ["4", "hello"]  # the CSV's 4 is a number
    assert not list(tmp_path.glob("*.partial"))
    # The Parquet file imports back, in chunks too, with the same values.
    done = run(server, "import", "golden-copy", str(target), "--chunk-rows", "1")
    assert done.returncode == 0, done.stderr
    assert "imported 2 items" in done.stderr
    copy = run(server, "export", "golden-copy", "-o", "-").stdout.splitlines()
    assert [(json.loads(r)["input"], json.loads(r)["expected_output"]) for r in copy] == [
        ("what is 2+2?", 4), ([{"role": "user", "content": "hi"}], "hello")
    ]

    done = run(server, "export", dataset_id, "-f", "openai", "-o", "-")
    assert [json.loads(line)["messages"][-1]["content"] for line in done.stdout.splitlines()] == ["4", "hello"]


def test_chunked_import_is_all_or_nothing(server, tmp_path):
    good = tmp_path / "rows.jsonl"
    good.write_text("".join(json.dumps({"input": f"q{n}", "tags": ["bulk"]}) + "\n" for n in range(7)))
    done = run(server, "import", "chunked", str(good), "--chunk-rows", "3")
    assert done.returncode == 0, done.stderr
    with client(server, headers={"authorization": f"Bearer {KEY}"}) as http:
        assert [i["input"] for i in items(http, "chunked")] == [f"q{n}" for n in range(7)]
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join([json.dumps({"input": "fine"})] * 4 + ["{broken", json.dumps({"expected_output": 1})]) + "\n")
        done = run(server, "import", "chunked", str(bad), "--chunk-rows", "2")
        assert done.returncode == 1
        assert "row 5:" in done.stderr and "row 6:" in done.stderr and "nothing imported" in done.stderr
        assert len(items(http, "chunked")) == 7


def test_errors_are_one_line(server, tmp_path):
    denied = run(server, "list", key=None)
    assert denied.returncode == 1 and denied.stderr.startswith("spanlake: error:") and "Traceback" not in denied.stderr
    missing = run(server, "export", "no-such-dataset", "-o", str(tmp_path / "x.jsonl"))
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert not (tmp_path / "x.jsonl").exists()
    unknown = tmp_path / "rows.txt"
    unknown.write_text("x")
    assert "--format" in run(server, "import", "d", str(unknown)).stderr
    assert "--no-create" in run(server, "import", "absent", str(unknown), "--format", "jsonl", "--no-create").stderr
    down = subprocess.run(
        [sys.executable, "-m", "spanlake", "datasets", "list", "--url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )
    assert down.returncode == 1 and "cannot reach" in down.stderr
