"""The ingest log: acks from our own fsynced log, a loader behind it, and what that must keep.

Kills at random moments with capture rules on, a torn last record, read-your-writes under load,
and a restart in front of a large unloaded log.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
import pyarrow as pa
import pytest

from datasets_client import list_all
from otlp_builders import llm_trace, new_trace_id, request
from senders import AckingClients
from test_durability import stored_span_count
from test_ingest_grpc import export

from spanlake.ingest.batch_bytes import encode_batch
from spanlake.ingest.decode import decode_protobuf
from spanlake.ingest.log import HEADER_BYTES, IngestLog, LogConfig, LogCorrupt

ROOT_RULE = """
rules:
  - name: roots
    dataset: roots
    when: {field: name, op: eq, value: agent.run}
"""


def _segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "ingest-log").glob("*.seg"))


def _captured_sources(server) -> Counter:
    with httpx.Client(base_url=server.http_url, timeout=30) as http:
        if http.get("/api/datasets/roots").status_code == 404:
            return Counter()
        rows = list_all(http, "/api/datasets/roots/items", limit=1000)
    return Counter(r["source_trace_id"] for r in rows)


def test_ten_sigkills_under_load_with_capture_rules_keep_every_ack_and_capture_once(make_server, tmp_path):
    """Three clients send whole traces while a span rule captures every root; the server is killed
    at a random moment, ten times over."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(ROOT_RULE)
    server = make_server("--rules", str(rules))
    rng = random.Random(18)
    acked: list[str] = []
    for _round in range(10):
        with AckingClients(server.grpc_target, n=3) as clients:
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
        acked += clients.acked
        server.restart()
    assert len(acked) > 100, "too few acknowledged traces to mean anything"
    with httpx.Client(base_url=server.http_url, timeout=30) as http:
        counts = {t: len(http.get(f"/api/traces/{t}").json().get("spans", [])) for t in acked}
    bad = {t: n for t, n in counts.items() if n != 10}
    assert not bad, f"{len(bad)} of {len(acked)} acked traces not stored exactly once: {list(bad.items())[:5]}"
    captured = _captured_sources(server)
    assert all(captured[t] == 1 for t in acked), [(t, captured[t]) for t in acked if captured[t] != 1][:5]
    # Items of traces whose ack was lost in a kill may exist (the client would retry), but once.
    assert max(captured.values()) == 1


def test_a_torn_last_record_is_dropped_on_replay(make_server):
    server = make_server()
    traces = [llm_trace(5) for _ in range(20)]
    for _, spans in traces:
        export(server.grpc_target, request(spans))
    server.kill()
    segment = _segments(server.data_dir)[-1]
    size = segment.stat().st_size
    # A crash mid-write leaves the start of a record: a whole header and half a payload.
    whole = segment.read_bytes()
    with open(segment, "ab") as f:
        f.write(whole[:HEADER_BYTES + 100])
    server.restart()
    assert segment.stat().st_size == size, "the torn record was not cut off"
    assert "torn tail" in server.output()
    for trace_id, _ in traces:
        assert stored_span_count(server, trace_id) == 5
    trace_id, spans = llm_trace(3)
    export(server.grpc_target, request(spans))
    assert stored_span_count(server, trace_id) == 3


def test_read_your_writes_under_load(make_server):
    """Every export, the moment it is acked, is whole in GET /api/traces/{id}, while others send."""
    server = make_server()
    with AckingClients(server.grpc_target, n=3):
        misses = []
        for _ in range(40):
            trace_id, spans = llm_trace(6)
            export(server.grpc_target, request(spans))
            resp = httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=30)
            if resp.status_code != 200 or len(resp.json()["spans"]) != 6:
                misses.append((trace_id, resp.status_code))
    assert not misses, f"{len(misses)} of 40 acked traces not readable at once: {misses[:3]}"


def _fill_log(directory: Path, batches: int, spans_per_batch: int) -> int:
    """Write a log the way a server would (IngestLog.append), with distinct traces per batch."""
    traces = [llm_trace(10) for _ in range(spans_per_batch // 10)]
    template = decode_protobuf(request([s for _, spans in traces for s in spans]).SerializeToString()).spans
    trace_col = template.schema.get_field_index("trace_id")

    async def fill() -> None:
        log = IngestLog.open(directory)
        log.start()
        for _ in range(batches):
            ids = [new_trace_id() for _ in traces]
            column = pa.array([ids[i // 10] for i in range(template.num_rows)], pa.string())
            table = template.set_column(trace_col, template.schema.field(trace_col), column)
            await log.append(encode_batch(table), table.num_rows)
        await log.close()

    asyncio.run(fill())
    return batches * template.num_rows


def test_restart_with_a_large_unloaded_log_accepts_exports_within_5_seconds(make_server, tmp_path):
    data = tmp_path / "data"
    server = make_server(data_dir=data)  # create the store, then stop it
    assert server.stop() == 0
    total = _fill_log(data / "ingest-log", batches=200, spans_per_batch=1000)
    log_bytes = sum(p.stat().st_size for p in _segments(data))
    assert log_bytes > 100 * 1024**2
    started = time.monotonic()
    server.restart()
    trace_id, spans = llm_trace(4)
    export(server.grpc_target, request(spans))
    accepted_after = time.monotonic() - started
    assert accepted_after < 5, f"first export accepted after {accepted_after:.1f}s"
    ready = httpx.get(f"{server.http_url}/readyz").json()
    assert ready["status"] == "ready"
    assert ready["loader"]["catching_up"] and ready["loader"]["behind_spans"] > 0
    # The new trace is behind the whole backlog: reading it waits for the loader, and a long
    # wait is logged with the loader's state.
    asked = time.monotonic()
    resp = httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=30)
    waited = time.monotonic() - asked
    assert resp.status_code == 200 and len(resp.json()["spans"]) == 4
    if waited >= 1.5:
        assert f"GET /api/traces/{trace_id} waited" in server.output()
    deadline = time.monotonic() + 120
    while httpx.get(f"{server.http_url}/readyz").json()["loader"]["catching_up"]:
        assert time.monotonic() < deadline, "the loader did not catch up in 120 s"
        time.sleep(0.5)
    stored = httpx.get(f"{server.http_url}/metrics").text
    line = next(l for l in stored.splitlines() if l.startswith("spanlake_spans_stored_total"))
    assert float(line.split()[-1]) == total + 4
    # Where the memory went: DuckDB holds the 200k spans' data, inside the process's RSS.
    gauges = {l.split()[0]: float(l.split()[-1]) for l in stored.splitlines() if l and not l.startswith("#")}
    assert 10 * 2**20 < gauges["spanlake_store_memory_bytes"] < gauges["process_resident_memory_bytes"]
    assert "spanlake_arrow_memory_bytes" in gauges
    assert stored_span_count(server, trace_id) == 4
    # Loaded segments are deleted: what is left is the active one.
    assert len(_segments(data)) == 1


# The log on its own, on real files ---------------------------------------------------------


def _append_all(log: IngestLog, payloads: list[bytes], *, one_by_one: bool = False) -> list[int]:
    async def run() -> list[int]:
        log.start()
        if one_by_one:
            ends = [await log.append(p, 1) for p in payloads]
        else:
            ends = await asyncio.gather(*(log.append(p, 1) for p in payloads))
        await log.close()
        return list(ends)

    return asyncio.run(run())


def test_concurrent_appends_share_fsyncs_and_read_back_in_order(tmp_path):
    log = IngestLog.open(tmp_path / "log")
    payloads = [f"record {i}".encode() * (i + 1) for i in range(200)]
    ends = _append_all(log, payloads)
    assert ends == sorted(ends)
    assert log.fsyncs < 200, "concurrent appends should share fsyncs"
    reopened = IngestLog.open(tmp_path / "log")
    records = reopened.read(0, max_spans=10_000)
    assert [r.payload for r in records] == payloads
    assert reopened.count_spans(0) == 200
    reopened.close_sync()


def test_segments_roll_and_loaded_ones_are_deleted(tmp_path):
    log = IngestLog.open(tmp_path / "log", LogConfig(segment_bytes=4096))
    ends = _append_all(log, [b"x" * 1000 for _ in range(40)], one_by_one=True)
    reopened = IngestLog.open(tmp_path / "log", LogConfig(segment_bytes=4096))
    assert reopened.segment_count == 10  # 4 records of 1,024 bytes fill a 4,096-byte segment
    assert len(reopened.read(0, max_spans=10_000)) == 40  # reading crosses segments
    reopened.mark_loaded(ends[20])  # 21 records loaded: the first 5 segments are done
    assert reopened.segment_count == 5
    assert len(sorted((tmp_path / "log").glob("*.seg"))) == 5
    assert [r.end for r in reopened.read(ends[20], max_spans=10_000)] == ends[21:]
    reopened.close_sync()


def test_a_flipped_byte_in_an_acked_record_is_reported_not_loaded(tmp_path):
    """Corruption under a running log stops the loader with an error; it never skips a record."""
    log = IngestLog.open(tmp_path / "log")
    _append_all(log, [b"a" * 500, b"b" * 500, b"c" * 500])
    reopened = IngestLog.open(tmp_path / "log")
    segment = sorted((tmp_path / "log").glob("*.seg"))[0]
    with open(segment, "r+b") as f:
        f.seek(HEADER_BYTES + 10)  # inside the first record's payload
        f.write(b"X")
    with pytest.raises(LogCorrupt, match="checksum"):
        reopened.read(0, max_spans=10)
    reopened.close_sync()


def test_opening_ends_the_log_at_its_first_bad_record_and_keeps_the_cut_bytes(tmp_path):
    log = IngestLog.open(tmp_path / "log")
    ends = _append_all(log, [b"a" * 500, b"b" * 500, b"c" * 500])
    segment = sorted((tmp_path / "log").glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    data[ends[0] + HEADER_BYTES + 10] ^= 0xFF  # inside the second record
    segment.write_bytes(bytes(data))
    reopened = IngestLog.open(tmp_path / "log")
    assert [r.payload for r in reopened.read(0, max_spans=10)] == [b"a" * 500]
    assert segment.with_suffix(".torn").read_bytes() == bytes(data[ends[0]:])
    reopened.close_sync()


def test_a_second_server_on_the_same_log_directory_is_refused(tmp_path):
    first = IngestLog.open(tmp_path / "log")
    with pytest.raises(RuntimeError, match="another spanlake server"):
        IngestLog.open(tmp_path / "log")
    first.close_sync()


def test_a_full_log_refuses_with_a_retryable_error(make_server):
    server = make_server("--log-max-bytes", "4096", "--load-max-spans", "1")
    refused = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(20):
            _, spans = llm_trace(10)
            try:
                export(server.grpc_target, request(spans))
            except grpc.RpcError as exc:
                with lock:
                    refused.append(exc.code())

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refused and set(refused) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
