"""Retention on the embedded store, through a real server: `--retention-days` and per-service days."""

from __future__ import annotations

import re
import time

import httpx
import yaml

from otlp_builders import llm_trace, request

DAY_NS = 86_400 * 10**9


def post(server, traces: list, service: str) -> None:
    spans = [s for _, trace in traces for s in trace]
    httpx.post(
        f"{server.http_url}/v1/traces", content=request(spans, service=service).SerializeToString(),
        headers={"content-type": "application/x-protobuf"}, timeout=30,
    ).raise_for_status()


def status(server, trace_id: str) -> int:
    return httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=30).status_code


def metric(server, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", httpx.get(f"{server.http_url}/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


def test_expired_traces_go_per_service_and_the_rest_stays(make_server, tmp_path):
    now = time.time_ns()
    old_checkout = [llm_trace(3, start_ns=now - 5 * DAY_NS) for _ in range(3)]
    old_search = [llm_trace(3, start_ns=now - 5 * DAY_NS) for _ in range(2)]  # 30-day flag applies
    ancient = [llm_trace(3, start_ns=now - 40 * DAY_NS)]
    fresh = [llm_trace(3)]
    # Seed without retention, so the item and score exist before their spans can go.
    data = tmp_path / "data"
    seeder = make_server("--store", "duckdb", data_dir=data)
    post(seeder, old_checkout, "checkout")
    post(seeder, old_search + ancient, "search")
    post(seeder, fresh, "checkout")
    dataset = httpx.post(f"{seeder.http_url}/api/datasets", json={"name": "kept-items"}).raise_for_status().json()
    capture = {"trace_ids": [old_checkout[0][0]]}
    assert httpx.post(f"{seeder.http_url}/api/datasets/kept-items/capture", json=capture).json()["captured"] == 1
    score = {"trace_id": old_checkout[0][0], "name": "quality", "value": 1, "source": "api"}
    httpx.post(f"{seeder.http_url}/api/scores", json=score).raise_for_status()
    seeder.stop()

    config = tmp_path / "spanlake.yaml"
    config.write_text(yaml.safe_dump({
        "retention": {"services": {"checkout": 3}, "interval_seconds": 0.5},
        "compaction": {"checkpoint_interval_seconds": 0.5},
    }))
    server = make_server("--store", "duckdb", "--retention-days", "30", "--config", str(config), data_dir=data)
    deadline = time.monotonic() + 30
    while status(server, old_checkout[0][0]) != 404 or status(server, ancient[0][0]) != 404:
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.3)
    assert all(status(server, t) == 404 for t, _ in old_checkout + ancient)
    assert all(status(server, t) == 200 for t, _ in old_search + fresh)
    items = httpx.get(f"{server.http_url}/api/datasets/{dataset['id']}/items").json()["items"]
    assert len(items) == 1 and items[0]["source_trace_id"] == old_checkout[0][0]  # items outlive spans
    kept = httpx.get(f"{server.http_url}/api/scores", params={"trace_id": old_checkout[0][0]}).json()["items"]
    assert [s["name"] for s in kept] == ["quality"]  # and so do scores
    assert metric(server, "spanlake_maintenance_traces_deleted") == 4
    deadline = time.monotonic() + 10
    while metric(server, "spanlake_maintenance_checkpoints") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "maintenance failed" not in server.output()


def test_a_bad_retention_section_stops_the_server_with_one_line(make_server, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"retention": {"services": {"checkout": 0}}}))
    server = make_server("--store", "duckdb", "--config", str(config), start=False)
    try:
        server.start(timeout=20)
    except RuntimeError as exc:
        assert "retention.services.checkout: must be a whole number of days >= 1, got 0" in str(exc)
        assert "Traceback" not in str(exc)
    else:
        raise AssertionError("the server started with retention.services.checkout: 0")
