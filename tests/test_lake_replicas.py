"""Two real replicas on one DuckLake: PostgreSQL catalog on 127.0.0.1:5432, Parquet on a local S3.

Both replicas run `spanlake serve --store ducklake:postgres:... --data-path s3://...` with the
AWS variables pointing at moto's S3 server, like a deployment behind a load balancer.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
import yaml

from lake_env import MotoS3, create_database, drop_database, postgres_lake_args, postgres_reachable
from otlp_builders import llm_trace, request
from scoring_endpoints import ScoringEndpoints
from server_process import ServerProcess

pytestmark = pytest.mark.skipif(
    not postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432 (the lake catalog these tests need)"
)

BUCKET = "spanlake-lake"
DAY_NS = 86_400 * 10**9


def post_spans(server: ServerProcess, spans: list, service: str, *, wait_loaded: bool = True) -> None:
    """Export to one replica; by default, also wait until its loader has put them in the lake, so
    the other replica's reads see them."""
    response = httpx.post(
        f"{server.http_url}/v1/traces",
        content=request(spans, service=service).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=60,
    )
    response.raise_for_status()
    if wait_loaded:
        loaded(server)


def trace_ids(server: ServerProcess, service: str) -> set[str]:
    """Every trace of `service` the replica lists (all pages, all time)."""
    found: set[str] = set()
    cursor = None
    while True:
        params = {"service": service, "limit": 1000, "since": "0"}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{server.http_url}/api/traces", params=params, timeout=30).raise_for_status().json()
        found |= {t["trace_id"] for t in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            return found


def wait_for(condition, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def loaded(server: ServerProcess) -> None:
    """Wait until the replica's loader has put every span it acknowledged into the lake: another
    replica's reads see them from then on (a replica's own reads wait for its loader by themselves)."""
    server.wait_loaded(30)


@pytest.fixture(scope="module")
def s3():
    server = MotoS3().start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def endpoints():
    server = ScoringEndpoints(slow_seconds=0.25).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory, s3, endpoints):
    """A fresh lake and the two replicas' shared config; yields a factory of replicas on it."""
    dbname = create_database()
    root = tmp_path_factory.mktemp("lake")
    config = root / "spanlake.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "scorers": [
                    {"name": "slow-http", "type": "http", "concurrency": 2,
                     "params": {"url": f"{endpoints.url}/score/slow"}},
                ],
                "scoring": {"lease_seconds": 3, "poll_seconds": 0.5},
                "retention": {"default_days": 30, "services": {"short-lived": 7}, "interval_seconds": 1},
                # Compaction keeps running under the other tests: merges must not disturb them.
                "compaction": {"interval_seconds": 2, "keep_snapshots_seconds": 0, "delete_files_after_seconds": 5},
            }
        )
    )
    args = [*postgres_lake_args(dbname, f"s3://{BUCKET}/{dbname}/"), "--config", str(config)]
    started: list[ServerProcess] = []

    def replica(name: str) -> ServerProcess:
        server = ServerProcess(root / name, *args, env=s3.env())
        started.append(server)
        return server.start(timeout=60)

    yield replica
    for server in started:
        server.kill()
    drop_database(dbname)


@pytest.fixture(scope="module")
def replicas(lake):
    return lake("a"), lake("b")


def test_each_replica_sees_every_span_of_the_other(replicas):
    a, b = replicas
    service = f"svc-{uuid.uuid4().hex[:8]}"
    sent: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def ingest(server: ServerProcess, key: str) -> None:
        try:
            for _ in range(15):  # 15 commits of 8 traces each, on both replicas at once
                batch = [llm_trace(3) for _ in range(8)]
                post_spans(server, [s for _, spans in batch for s in spans], service, wait_loaded=False)
                sent[key] += [t for t, _ in batch]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(a, "a")), threading.Thread(target=ingest, args=(b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    everything = set(sent["a"]) | set(sent["b"])
    assert len(everything) == 240
    loaded(a)
    loaded(b)
    for server in (a, b):
        assert trace_ids(server, service) == everything
    # Span level, across replicas: a trace sent to A, read whole from B, and the other way round.
    for reader, trace_id in ((b, sent["a"][0]), (a, sent["b"][-1])):
        trace = httpx.get(f"{reader.http_url}/api/traces/{trace_id}", timeout=30).raise_for_status().json()
        assert len(trace["spans"]) == 3


def test_a_dataset_name_created_on_both_at_once_exists_once(replicas):
    a, b = replicas
    for _ in range(4):
        name = f"golden-{uuid.uuid4().hex[:8]}"
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def create(server: ServerProcess) -> None:
            barrier.wait()
            r = httpx.post(f"{server.http_url}/api/datasets", json={"name": name}, timeout=60)
            statuses.append(r.status_code)

        threads = [threading.Thread(target=create, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201, 409], statuses
        for server in (a, b):
            listed = httpx.get(f"{server.http_url}/api/datasets", params={"search": name}, timeout=30).json()["items"]
            assert [d["name"] for d in listed] == [name]


def test_one_span_captured_into_a_dataset_from_both_replicas_is_one_item(replicas):
    a, b = replicas
    name = f"capture-{uuid.uuid4().hex[:8]}"
    httpx.post(f"{a.http_url}/api/datasets", json={"name": name}, timeout=60).raise_for_status()
    trace_id, spans = llm_trace(4)
    post_spans(a, spans, "capture-svc")
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def capture(server: ServerProcess) -> None:
        barrier.wait()
        r = httpx.post(f"{server.http_url}/api/datasets/{name}/capture", json={"trace_ids": [trace_id]}, timeout=60)
        results.append(r.raise_for_status().json())

    threads = [threading.Thread(target=capture, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["captured"] for r in results) == 1, results
    items = httpx.get(f"{b.http_url}/api/datasets/{name}/items", timeout=30).json()["items"]
    assert len(items) == 1


def test_retention_deletes_expired_traces_on_the_lake_and_compaction_keeps_queries_right(replicas):
    a, b = replicas
    now = time.time_ns()
    expired = [llm_trace(3, start_ns=now - 10 * DAY_NS + i * 10**6) for i in range(5)]
    kept_old = [llm_trace(3, start_ns=now - 10 * DAY_NS + i * 10**6) for i in range(5)]
    recent = [llm_trace(3) for _ in range(12)]
    post_spans(a, [s for _, spans in expired for s in spans], "short-lived")  # 7 days
    post_spans(b, [s for _, spans in kept_old for s in spans], "long-lived")  # the 30-day default
    for i in range(0, 12, 3):  # small commits: files for compaction to merge
        post_spans(b if i % 2 else a, [s for _, spans in recent[i : i + 3] for s in spans], "long-lived")

    wait_for(lambda: not trace_ids(a, "short-lived"), 90, "retention to delete the 10-day-old short-lived traces")
    assert not trace_ids(b, "short-lived")
    gone = httpx.get(f"{b.http_url}/api/traces/{expired[0][0]}", timeout=30)
    assert gone.status_code == 404
    assert trace_ids(b, "long-lived") >= {t for t, _ in kept_old} | {t for t, _ in recent}

    # Let compaction run over the new files, then read every trace back whole from both replicas.
    time.sleep(5)
    for server in (a, b):
        for trace_id, spans in [*kept_old, *recent]:
            trace = httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=30).raise_for_status().json()
            assert sorted(s["span_id"] for s in trace["spans"]) == sorted(s.span_id.hex() for s in spans)
    logs = a.output() + b.output()
    assert "compaction:" in logs and "retention: deleted 5 trace(s), 15 span(s)" in logs, logs[-3000:]


def test_a_batch_scored_via_a_is_completed_by_b_when_a_is_killed(replicas, endpoints):
    a, b = replicas
    batch_traces = [llm_trace(2) for _ in range(30)]
    post_spans(a, [s for _, spans in batch_traces for s in spans], "scored-svc")
    ids = [t for t, _ in batch_traces]
    accepted = httpx.post(
        f"{a.http_url}/api/scores/batch", json={"scorer": "slow-http", "trace_ids": ids}, timeout=30
    ).raise_for_status().json()
    batch = accepted["batch_id"]

    def status(server: ServerProcess) -> dict:
        return httpx.get(f"{server.http_url}/api/scores/batches/{batch}", timeout=30).raise_for_status().json()

    # A claims the batch (B may not: A holds the lease); kill A once it has made some progress.
    wait_for(lambda: status(b)["completed"] >= 4, 60, "replica A to score a few traces")
    assert sum(endpoints.started[t] for t in ids) < len(ids)
    a.kill()
    done = wait_for(lambda: (s := status(b))["status"] == "completed" and s, 90, "replica B to finish the batch")
    assert done["completed"] + done["failed"] == done["total"] == 30 and done["failed"] == 0
    scores = httpx.get(
        f"{b.http_url}/api/scores", params={"batch_id": batch, "limit": 1000}, timeout=30
    ).raise_for_status().json()["items"]
    assert sorted(s["trace_id"] for s in scores) == sorted(ids)  # one score per trace, none twice
    a.restart()
