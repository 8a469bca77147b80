"""The store layer on DuckLake, without servers: what DuckLake detects, and what our locks add.

Two `Store`s on one PostgreSQL-catalog lake stand for two replicas (each its own DuckDB
instance). A barrier inside the transaction makes both read before either commits, so the race
the locks exist for happens every time instead of by luck. Retention and compaction run on
every backend.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from lake_env import conninfo, create_database, drop_database, postgres_reachable
from otlp_builders import llm_trace, request
from spanlake.ingest.decode import decode_protobuf
from spanlake.store import Store, StoreConfig, compaction, datasets, jobs, locks, scores
from spanlake.store.connection import StoreConfigError
from spanlake.store.ids import uuid7
from spanlake.store.retention import RetentionPolicy, delete_expired_chunk
from spanlake.clock import utc_now
from spanlake.store.writer import append_spans

needs_postgres = pytest.mark.skipif(
    not postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432 (the lake catalog these tests need)"
)
DAY_NS = 86_400 * 10**9


@pytest.fixture
def pg_lake(tmp_path: Path):
    """A function opening one more Store (replica) on a fresh PostgreSQL-catalog lake."""
    dbname = create_database()
    opened: list[Store] = []

    def open_store() -> Store:
        store = Store.open(StoreConfig(url=f"ducklake:postgres:{conninfo(dbname)}", data_path=f"{tmp_path}/lake/"))
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()
    drop_database(dbname)


@pytest.fixture(params=["duckdb", "ducklake"])
def any_store(request, tmp_path: Path):
    url = "duckdb" if request.param == "duckdb" else f"ducklake:{tmp_path}/catalog.ducklake"
    store = Store.open(StoreConfig(url=url, data_dir=tmp_path))
    yield store
    store.close()


def race(stores: list[Store], fn, *args) -> list[object]:
    """Run fn(cur, barrier_wait, *args) as one write on each store at once; results or exceptions."""
    barrier = threading.Barrier(len(stores))
    results: list[object] = [None] * len(stores)

    def wait_once(state: dict) -> None:
        if not state.get("waited"):  # only the first attempt; a retry runs alone
            state["waited"] = True
            barrier.wait(timeout=30)

    def run(i: int) -> None:
        state: dict = {}
        try:
            results[i] = stores[i].write_sync(fn, lambda: wait_once(state), *args)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def ingest(store: Store, spans: list, service: str = "svc") -> None:
    store.write_sync(append_spans, [decode_protobuf(request(spans, service=service).SerializeToString()).spans])


@needs_postgres
def test_ducklake_lets_two_inserts_commit_but_not_two_lock_holders(pg_lake):
    """The behaviour the design rests on (DuckLake 1.5.5): inserts never conflict, updates do."""
    a, b = pg_lake(), pg_lake()

    def insert_only(cur, wait, name):
        cur.execute("SELECT count(*) FROM datasets WHERE name = ?", [name]).fetchone()
        wait()
        cur.execute("INSERT INTO datasets (id, name) VALUES (?, ?)", [uuid7(), name])

    assert race([a, b], insert_only, "twice") == [None, None]
    assert a.read_sync(lambda c: c.execute("SELECT count(*) FROM datasets WHERE name = 'twice'").fetchone()[0]) == 2

    def hold_only(cur, wait):
        locks.hold(cur)
        wait()

    assert race([a, b], hold_only) == [None, None]  # both commit: the loser was re-run
    assert a.conflict_retries + b.conflict_retries >= 1


@needs_postgres
def test_a_dataset_name_created_by_two_replicas_at_once_exists_once(pg_lake):
    a, b = pg_lake(), pg_lake()

    def create(cur, wait, name):
        taken = datasets.name_taken(cur, name)
        wait()  # both have checked; neither has committed
        if taken:
            return "taken"
        datasets.insert_dataset(cur, uuid7(), name, None, {})
        return "created"

    assert sorted(race([a, b], create, "golden")) == ["created", "taken"]
    assert a.conflict_retries + b.conflict_retries == 1
    assert b.read_sync(lambda c: c.execute("SELECT count(*) FROM datasets WHERE name = 'golden'").fetchone()[0]) == 1


@needs_postgres
def test_one_score_identity_written_by_two_replicas_at_once_is_stored_once(pg_lake):
    a, b = pg_lake(), pg_lake()
    trace_id, spans = llm_trace(2)
    ingest(a, spans)

    def write(cur, wait, value):
        cur.execute("SELECT count(*) FROM scores").fetchone()
        wait()
        return scores.upsert_scores(cur, [{
            "id": uuid7(), "trace_id": trace_id, "span_id": None, "name": "quality", "value": value,
            "data_type": "numeric", "source": "api", "scorer": None, "created_at": utc_now(),
        }])

    race([a, b], write, 0.5)
    rows = a.read_sync(lambda c: c.execute("SELECT count(*) FROM scores WHERE trace_id = ?", [trace_id]).fetchone()[0])
    assert rows == 1


@needs_postgres
def test_a_lease_has_one_holder_and_passes_when_it_expires(pg_lake):
    a, b = pg_lake(), pg_lake()
    assert a.write_sync(locks.try_lease, locks.MAINTENANCE, "a", 1.0)
    assert not b.write_sync(locks.try_lease, locks.MAINTENANCE, "b", 1.0)
    assert a.write_sync(locks.try_lease, locks.MAINTENANCE, "a", 1.0)  # renewal
    time.sleep(1.2)  # a "died": no renewal
    assert b.write_sync(locks.try_lease, locks.MAINTENANCE, "b", 30.0)
    assert not a.write_sync(locks.try_lease, locks.MAINTENANCE, "a", 1.0)


@needs_postgres
def test_two_replicas_claim_one_job_once(pg_lake):
    a, b = pg_lake(), pg_lake()
    job = a.write_sync(jobs.create_job, "test_kind", {}, [("a" * 32, None)])

    def claim(cur, wait, owner):
        found = jobs.claim_job(cur, "test_kind", owner, 30.0)
        wait()
        return found.owner if found else None

    owners = race([a, b], claim, "replica")
    assert sorted(map(str, owners)) == ["None", "replica"], owners  # the loser, re-run, finds it taken
    assert a.read_sync(jobs.get_job, job.id).status == jobs.RUNNING


def test_retention_deletes_expired_traces_and_their_job_state_but_never_items_or_scores(any_store):
    store = any_store
    now_ns = time.time_ns()
    old_short = [llm_trace(3, start_ns=now_ns - 10 * DAY_NS + i * 10**6) for i in range(5)]
    old_default = [llm_trace(3, start_ns=now_ns - 10 * DAY_NS) for _ in range(2)]
    recent = [llm_trace(3) for _ in range(3)]
    ingest(store, [s for _, spans in old_short for s in spans], "checkout")
    ingest(store, [s for _, spans in old_default for s in spans], "search")
    ingest(store, [s for _, spans in recent for s in spans], "checkout")
    victim = old_short[0][0]
    dataset_id = uuid7()
    store.write_sync(datasets.insert_dataset, dataset_id, "keep-me", None, {})
    store.write_sync(lambda c: c.execute(
        "INSERT INTO dataset_items (id, dataset_id, source_trace_id, valid_from) VALUES (?, ?, ?, ?)",
        [uuid7(), dataset_id, victim, utc_now()]))
    store.write_sync(scores.upsert_scores, [{
        "id": uuid7(), "trace_id": victim, "span_id": None, "name": "q", "value": 1.0, "data_type": "numeric",
        "source": "api", "scorer": None, "created_at": utc_now()}])
    finished = store.write_sync(jobs.create_job, "k", {}, [(victim, None), (recent[0][0], None)])
    store.write_sync(lambda c: c.execute("UPDATE jobs SET status = 'completed' WHERE id = ?", [finished.id]))
    running = store.write_sync(jobs.create_job, "k", {}, [(victim, None)])
    store.write_sync(lambda c: c.execute("INSERT INTO capture_pending VALUES (?, ?)", [victim, utc_now()]))

    assert store.write_sync(delete_expired_chunk, RetentionPolicy(default_days=30), utc_now(), 3).traces == 0
    policy = RetentionPolicy(default_days=30, services={"checkout": 7})
    first = store.write_sync(delete_expired_chunk, policy, utc_now(), 3)  # bounded: 3 traces a chunk
    second = store.write_sync(delete_expired_chunk, policy, utc_now(), 3)
    third = store.write_sync(delete_expired_chunk, policy, utc_now(), 3)
    assert (first.traces, second.traces, third.traces) == (3, 2, 0)
    assert first.spans + second.spans == 15

    def count(sql: str, *params) -> int:
        return store.read_sync(lambda c: c.execute(sql, list(params)).fetchone()[0])

    expired_ids = [t for t, _ in old_short]
    assert count("SELECT count(*) FROM spans WHERE list_contains(?::VARCHAR[], trace_id)", expired_ids) == 0
    assert count("SELECT count(*) FROM trace_index WHERE list_contains(?::VARCHAR[], trace_id)", expired_ids) == 0
    assert count("SELECT count(*) FROM spans") == 15  # 2 old "search" traces (30-day default) + 3 recent
    assert count("SELECT count(*) FROM capture_pending") == 0
    assert count("SELECT count(*) FROM job_items WHERE job_id = ?", finished.id) == 1  # the recent trace's
    assert count("SELECT count(*) FROM job_items WHERE job_id = ?", running.id) == 1  # unfinished: its runner decides
    assert count("SELECT count(*) FROM dataset_items WHERE source_trace_id = ?", victim) == 1
    assert count("SELECT count(*) FROM scores WHERE trace_id = ?", victim) == 1
    # A default alone (no per-service rule) takes the 10-day-old "search" traces too.
    assert store.write_sync(delete_expired_chunk, RetentionPolicy(default_days=5), utc_now(), 10).traces == 2
    assert count("SELECT count(*) FROM spans") == 9


def test_compaction_merges_small_files_and_removes_the_old_ones(tmp_path: Path):
    store = Store.open(StoreConfig(url=f"ducklake:{tmp_path}/catalog.ducklake"))
    try:
        # One commit each: 12 small files. (Commits of 10 rows or fewer are inlined into the
        # catalog instead, and reach files when compaction flushes them.)
        sent = [llm_trace(12) for _ in range(12)]
        for _, spans in sent:
            ingest(store, spans)
        before = store.read_sync(compaction.file_stats, "spans")
        assert before.files == 12
        store.write_sync(compaction.merge_files, "spans")
        store.write_sync(compaction.expire_snapshots, 0.0)
        store.write_sync(compaction.cleanup_files, 0.0)
        after = store.read_sync(compaction.file_stats, "spans")
        assert after.files == 1 and after.rows == before.rows == 144
        on_disk = list((tmp_path / "catalog.ducklake.files").rglob("*.parquet"))
        assert len([p for p in on_disk if "spans" in p.parts]) == 1
        got = store.read_sync(lambda c: c.execute("SELECT count(DISTINCT trace_id) FROM spans").fetchone()[0])
        assert got == 12
    finally:
        store.close()


def test_a_missing_lake_extra_names_the_install_command(monkeypatch, tmp_path: Path):
    import sys

    monkeypatch.setitem(sys.modules, "duckdb_extension_ducklake", None)  # as if never installed
    with pytest.raises(StoreConfigError, match=r"not installed; run: pip install 'spanlake\[lake\]'"):
        Store.open(StoreConfig(url=f"ducklake:{tmp_path}/x.ducklake"))


def test_s3_settings_come_from_the_aws_variables(monkeypatch):
    from spanlake.store.connection import _configure_s3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.internal:9000")
    conn = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    _configure_s3(conn)
    secret = conn.execute("SELECT secret_string FROM duckdb_secrets() WHERE name = 'spanlake_s3'").fetchone()[0]
    for expected in ("region=eu-west-3", "endpoint=minio.internal:9000", "use_ssl=false", "url_style=path", "key_id=AKIDEXAMPLE"):
        assert expected in secret
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.example.com")
    _configure_s3(conn)
    secret = conn.execute("SELECT secret_string FROM duckdb_secrets() WHERE name = 'spanlake_s3'").fetchone()[0]
    assert "use_ssl=true" in secret and "endpoint=s3.example.com" in secret


@needs_postgres
def test_retention_lands_under_nonstop_inserts_from_another_replica(pg_lake):
    """Without the write fence every chunk would lose to B's commits (delete vs insert conflict)."""
    import asyncio

    from spanlake.store.fence import WriteFence

    a, b = pg_lake(), pg_lake()
    now_ns = time.time_ns()
    ingest(a, [s for _ in range(20) for s in llm_trace(3, start_ns=now_ns - 10 * DAY_NS)[1]], "old")
    stop = threading.Event()
    commits = [0]

    def keep_inserting() -> None:  # replica B: a commit every few milliseconds, without pause
        while not stop.is_set():
            ingest(b, llm_trace(12)[1])
            commits[0] += 1

    async def run() -> tuple[int, int]:
        fences = [WriteFence(a, "a"), WriteFence(b, "b")]
        for fence in fences:
            fence.start()
        try:
            await asyncio.sleep(0.5)
            chunk = await fences[0].write(delete_expired_chunk, RetentionPolicy(default_days=7), utc_now(), 100)
            return chunk.traces, fences[0].fenced_writes
        finally:
            for fence in fences:
                await fence.stop()

    writer = threading.Thread(target=keep_inserting)
    writer.start()
    try:
        deleted, fenced = asyncio.run(run())
    finally:
        stop.set()
        writer.join()
    assert deleted == 20 and fenced <= 1
    assert commits[0] > 5  # B kept committing around the fence
    assert b.read_sync(lambda c: c.execute("SELECT count(*) FROM spans WHERE service_name = 'old'").fetchone()[0]) == 0


@needs_postgres
def test_rule_counters_and_budgets_count_a_re_run_transaction_once(pg_lake):
    """Two replicas' transactions clash and one is re-run from the start; what it counted in
    memory (rule counters, the hourly capture budget) must count once, not once per attempt."""
    from spanlake.capture.counters import RuleCounter
    from spanlake.capture.rates import HourlyLimiter

    a, b = pg_lake(), pg_lake()
    # Each replica's in-memory state, keyed by the thread `race` runs its write on.
    counters: dict[int, RuleCounter] = {}
    limiters: dict[int, HourlyLimiter] = {}
    attempts: list[int] = []

    def capture_like(cur, wait):
        me = threading.get_ident()
        attempts.append(me)
        granted = limiters.setdefault(me, HourlyLimiter()).take("rule", 10, 4)
        counters.setdefault(me, RuleCounter()).count(matched=4, captured=granted)
        locks.hold(cur)  # the update two replicas' captures clash on (dataset clocks do the same)
        wait()

    results = race([a, b], capture_like)
    assert results == [None, None]
    assert len(attempts) >= 3  # one of them ran twice
    assert [(c.matched, c.captured) for c in counters.values()] == [(4, 4), (4, 4)]
    # Each limiter granted 4 of 10 per committed attempt: 6 left, also for the re-run one.
    assert [lim.take("rule", 10, 10) for lim in limiters.values()] == [6, 6]


def test_a_rolled_back_transaction_counts_nothing_and_gives_its_budget_back(any_store):
    from spanlake.capture.counters import RuleCounter
    from spanlake.capture.rates import HourlyLimiter

    counter, limiter = RuleCounter(), HourlyLimiter()

    def fails(cur):
        assert limiter.take("rule", 5, 3) == 3
        counter.count(matched=3, captured=3)
        raise RuntimeError("the commit never happens")

    with pytest.raises(RuntimeError):
        any_store.write_sync(fails)
    assert (counter.matched, counter.captured) == (0, 0)
    assert limiter.take("rule", 5, 5) == 5

    def succeeds(cur):
        counter.count(matched=2)
        assert counter.matched == 0  # not before the commit
        limiter.take("rule", 5, 1)

    any_store.write_sync(succeeds)
    assert counter.matched == 2
