"""Each part of a server started, stopped and started again, as a restart does.

Real parts only: a DuckDB file in a temp directory, the real ingest log, loader and receiver,
real config objects. Each component is constructed the way server.py wires it, with exactly
what it needs, and a restart is a new instance over the same store (what a new process gets).
After a stop no task of the component may be left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from otlp_builders import llm_trace, new_span_id, new_trace_id, request, span

from spanlake.capture.component import CaptureRules
from spanlake.capture.counters import RuleCounters
from spanlake.capture.rules import load_rules
from spanlake.datasets.service import add_items, create_dataset
from spanlake.ingest.loader import Loader
from spanlake.ingest.log import IngestLog
from spanlake.ingest.receiver import Receiver
from spanlake.lifecycle import Lifecycle
from spanlake.maintenance import Maintenance, MaintenanceConfig
from spanlake.metrics import Metrics
from spanlake.outbound import OutboundPolicy
from spanlake.runs import service as run_service
from spanlake.runs.component import RunsComponent
from spanlake.runs.config import RunsConfig
from spanlake.runs.pricing import Pricing
from spanlake.runs.validate import posted_results, run_spec
from spanlake.scoring.batches import BatchRequest, create_batch
from spanlake.scoring.component import ScoringComponent
from spanlake.scoring.config import EngineConfig, ScoringConfig
from spanlake.scoring.registry import ScorerRegistry
from spanlake.server import start_services
from spanlake.settings import load_settings
from spanlake.store import Store, StoreConfig, jobs, locks, runs
from spanlake.store.dataset_items import NewItem
from spanlake.store.datasets import find_dataset
from spanlake.store.fence import WriteFence
from spanlake.store.ids import uuid7
from spanlake.store.retention import RetentionPolicy
from spanlake.store.scores import scores_for_traces

RULES = """
rules:
  - name: refunds
    dataset: refunds
    when: {field: name, op: eq, value: refund}
"""


def running_tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.05)


def _now(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A plain condition in the shape `eventually` awaits."""
    async def check() -> bool:
        return condition()
    return check


class Ingest:
    """A server's store and ingest path (log, receiver, loader) without its listeners."""

    def __init__(self, store: Store, log: IngestLog):
        self.store = store
        self.log = log
        self.loader: Loader | None = None
        self.receiver: Receiver | None = None

    async def start_loader(self, *stages: object) -> None:
        metrics = Metrics()
        self.loader = Loader(self.log, self.store, metrics)
        for stage in stages:
            self.loader.add_stage(stage)  # type: ignore[arg-type]
        self.receiver = Receiver(self.log, metrics, on_append=self.loader.appended)
        await self.loader.start()

    async def stop_loader(self) -> None:
        assert self.loader is not None and self.receiver is not None
        await self.loader.stop()
        self.receiver.close()

    async def send(self, spans: list, *, wait: bool = True) -> None:
        """Export spans as an exporter would; with `wait`, until the store holds them."""
        assert self.loader is not None and self.receiver is not None
        await self.receiver.accept(request(spans).SerializeToString(), "protobuf")
        if wait:
            assert await self.loader.wait_loaded(self.log.durable_end, 20.0)

    async def span_count(self, trace_id: str) -> int:
        return await self.store.read(
            lambda cur: cur.execute("SELECT count(*) FROM spans WHERE trace_id = ?", [trace_id]).fetchone()[0]
        )


@contextlib.asynccontextmanager
async def ingest(tmp: Path) -> AsyncIterator[Ingest]:
    parts = Lifecycle()
    try:
        store = await asyncio.to_thread(Store.open, StoreConfig(data_dir=tmp))
        parts.started("store", lambda: asyncio.to_thread(store.close))
        log = await asyncio.to_thread(IngestLog.open, tmp / "ingest-log")
        log.start()
        parts.started("ingest log", log.close)
        yield Ingest(store, log)
    finally:
        await parts.stop()


def fence_for(store: Store) -> WriteFence:
    return WriteFence(store, locks.new_owner())


def test_the_loader_loads_after_a_restart_what_was_acked_while_it_was_stopped(tmp_path):
    async def main() -> None:
        async with ingest(tmp_path) as parts:
            before = running_tasks()
            await parts.start_loader()
            first, spans = llm_trace(3)
            await parts.send(spans)
            assert await parts.span_count(first) == 3
            await parts.loader.stop()
            assert running_tasks() == before
            second, spans = llm_trace(2)
            await parts.send(spans, wait=False)  # acked (in the log), not loaded
            assert await parts.span_count(second) == 0
            parts.receiver.close()

            await parts.start_loader()
            await eventually(lambda: _equals(parts.span_count(second), 2), "the acked trace loaded after restart")
            await parts.stop_loader()
            assert running_tasks() == before

    asyncio.run(main())


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


def test_capture_rules_still_capture_after_a_restart(tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)

    def capture(store: Store, fence: WriteFence) -> CaptureRules:
        return CaptureRules(store, str(rules_file), load_rules(str(rules_file)), quiet_seconds=30.0, scorers=None,
                            fence=fence, counters=RuleCounters())

    async def refund(parts: Ingest) -> None:
        trace_id = new_trace_id()
        await parts.send([span(trace_id, new_span_id(), "refund"), span(trace_id, new_span_id(), "lookup")])

    async def items(store: Store) -> int:
        dataset = await store.read(find_dataset, "refunds")
        return 0 if dataset is None else dataset["item_count"]

    async def main() -> None:
        async with ingest(tmp_path / "data") as parts:
            before = running_tasks()
            fence = fence_for(parts.store)
            first = capture(parts.store, fence)
            first.start()
            await parts.start_loader(first.stage)
            await refund(parts)
            assert await items(parts.store) == 1
            assert first.counters.for_rule("refunds").as_dict()["captured"] == 1
            await parts.stop_loader()
            await first.stop()
            assert running_tasks() == before

            second = capture(parts.store, fence)
            second.start()
            await parts.start_loader(second.stage)
            await refund(parts)
            assert await items(parts.store) == 2
            await parts.stop_loader()
            await second.stop()
            assert running_tasks() == before

    asyncio.run(main())


def test_scoring_resumes_a_batch_queued_while_it_was_stopped(tmp_path):
    config = ScoringConfig(engine=EngineConfig(poll_seconds=0.1, lease_seconds=3.0, rule_dispatch_seconds=0.2))

    async def main() -> None:
        async with ingest(tmp_path) as parts:
            await parts.start_loader()
            trace_id, spans = llm_trace(3, error=True)
            await parts.send(spans)
            await parts.stop_loader()
            registry = ScorerRegistry.load(config, entry_points=False)
            fence = fence_for(parts.store)
            before = running_tasks()

            def scoring() -> ScoringComponent:
                return ScoringComponent(parts.store, registry, config, fence=fence, rule_counters=RuleCounters())

            first = scoring()
            await first.start()
            assert running_tasks() - before, "scoring started no claim loop"
            await first.stop()
            assert running_tasks() == before

            job, unknown = await create_batch(parts.store, BatchRequest("no_errors", targets=[(trace_id, None)]))
            assert unknown == []
            await asyncio.sleep(0.3)  # nothing runs it while scoring is stopped
            assert (await parts.store.read(jobs.get_job, job.id)).status == jobs.PENDING

            second = scoring()
            await second.start()

            async def completed() -> bool:
                return (await parts.store.read(jobs.get_job, job.id)).status == jobs.COMPLETED

            await eventually(completed, "the batch queued before the restart completed")
            scores = (await parts.store.read(scores_for_traces, [trace_id]))[trace_id]
            assert [(s["name"], s["value"]) for s in scores] == [("no_errors", 0.0)]
            await second.stop()
            assert running_tasks() == before
            await registry.aclose()

    asyncio.run(main())


def test_runs_resume_a_run_completed_while_they_were_stopped(tmp_path):
    config = RunsConfig(poll_seconds=0.1, lease_seconds=3.0, trace_wait_seconds=0.0)

    async def main() -> None:
        async with ingest(tmp_path) as parts:
            store = parts.store
            registry = ScorerRegistry.load(ScoringConfig(), entry_points=False)
            await store.write(create_dataset, "qa", None, {})
            [item] = await store.write(add_items, "qa", [NewItem(id=uuid7(), input='"2+2?"', expected_output='"4"')])
            run = await store.write(run_service.create_run, "qa", run_spec({"mode": "client", "scorers": ["exact_match"]}))
            results = posted_results({"results": [{"item_id": item["id"], "output": "4"}]})
            await store.write(run_service.post_results, "qa", run.id, results)
            before = running_tasks()

            def component() -> RunsComponent:
                return RunsComponent(store, config, Pricing(), registry, outbound=OutboundPolicy.from_sections({}))

            first = component()
            await first.start()
            await first.stop()
            assert running_tasks() == before

            await store.write(run_service.complete_run, "qa", run.id)  # the run's scoring job is queued
            await asyncio.sleep(0.3)
            assert (await store.read(runs.get_run, run.id)).status == runs.RUNNING

            second = component()
            await second.start()

            async def finished() -> bool:
                return (await store.read(runs.get_run, run.id)).status == runs.COMPLETED

            await eventually(finished, "the run completed by the client was scored after the restart")
            await second.stop()
            assert running_tasks() == before
            await registry.aclose()

    asyncio.run(main())


def test_maintenance_applies_retention_again_after_a_restart(tmp_path):
    config = MaintenanceConfig(retention=RetentionPolicy(default_days=1), retention_interval_seconds=0.2)
    three_days_ago = time.time_ns() - int(dt.timedelta(days=3).total_seconds() * 1e9)

    async def main() -> None:
        async with ingest(tmp_path) as parts:
            await parts.start_loader()
            fence = fence_for(parts.store)
            before = running_tasks()
            for restart in range(2):
                old, spans = llm_trace(2, start_ns=three_days_ago)
                recent, recent_spans = llm_trace(2)
                await parts.send(spans + recent_spans)
                assert await parts.span_count(old) == 2
                maintenance = Maintenance(parts.store, config, fence)
                maintenance.start()
                await eventually(lambda: _equals(parts.span_count(old), 0), f"old trace deleted (start {restart + 1})")
                # The count is read after the delete commits, the stats after the loop resumes.
                await eventually(_now(lambda: maintenance.stats.traces_deleted == 1), "the deletion counted")
                assert await parts.span_count(recent) == 2
                assert maintenance.stats.traces_deleted == 1
                await maintenance.stop()
                assert running_tasks() == before
            await parts.stop_loader()

    asyncio.run(main())


def test_the_server_parts_start_in_order_stop_in_reverse_and_start_again(tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    settings = load_settings({"data": str(tmp_path / "data"), "rules": str(rules_file)}, env={})

    async def main() -> None:
        before = running_tasks()
        services = await start_services(settings)
        assert services.parts.names == [
            "scorer registry", "store", "ingest log", "receiver", "write fence",
            "scoring", "capture", "runs", "maintenance", "loader",
        ]
        trace_id = new_trace_id()
        await services.receiver.accept(request([span(trace_id, new_span_id(), "refund")]).SerializeToString(), "protobuf")
        await services.stop()
        assert services.parts.names == []
        assert running_tasks() == before

        again = await start_services(settings)  # the store and the log's lock were released
        assert await again.loader.wait_loaded(again.log.durable_end, 20.0)
        dataset = await again.store.read(find_dataset, "refunds")
        assert dataset is not None and dataset["item_count"] == 1, "the span acked before the stop was captured"
        await again.stop()
        assert running_tasks() == before

    asyncio.run(main())


def test_a_start_that_fails_half_way_stops_what_had_started(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "ingest-log").write_text("a file where the ingest log's directory goes")
    settings = load_settings({"data": str(data)}, env={})

    async def main() -> None:
        before = running_tasks()
        with pytest.raises(OSError):
            await start_services(settings)  # the store opened, the ingest log could not
        assert running_tasks() == before
        (data / "ingest-log").unlink()
        services = await start_services(settings)  # DuckDB refuses a file still open in this process
        await services.stop()
        assert running_tasks() == before

    asyncio.run(main())
