"""`spanlake serve`: gRPC and HTTP in one asyncio process, wired to one store.

The wiring is here, in `start_services`: each part is constructed with exactly what it needs,
started in this order and stopped in reverse (spanlake/lifecycle.py):

    scorer registry, rules file   (before the store: a bad scorer or rule fails the start at once)
    store, ingest log, receiver
    write fence                   (shared by the capture judge, rule dispatch and retention)
    scoring, capture, runs, maintenance
    loader                        (last: capture's commit stage must be in it before replay)

then the listeners. A stop (SIGTERM/SIGINT) refuses new work, lets the log fsync what it was
writing, stops the loader after the transaction in progress, then the rest, and exits 0:
whatever is not loaded yet stays in the log and loads at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Iterator

import grpc
import uvicorn

from spanlake.api.app import build_app
from spanlake.auth import KeyRing
from spanlake.capture.component import CaptureRules
from spanlake.capture.counters import RuleCounters
from spanlake.capture.rules import RuleSet, load_rules
from spanlake.ingest.loader import Loader, LoaderConfig
from spanlake.ingest.log import IngestLog, LogConfig
from spanlake.ingest.otlp_grpc import ExportHandler, build_grpc_server
from spanlake.ingest.receiver import Receiver, ReceiverConfig
from spanlake.ingest.signals import LOGS, TRACES
from spanlake.lifecycle import Lifecycle
from spanlake.maintenance import Maintenance, export_metrics
from spanlake.metrics import Metrics
from spanlake.runs.component import RunsComponent
from spanlake.scoring.component import ScoringComponent
from spanlake.scoring.registry import ScorerRegistry
from spanlake.services import Services
from spanlake.settings import Settings
from spanlake.store import Store, StoreConfig, locks
from spanlake.store.connection import embedded_wal_file
from spanlake.store.fence import WriteFence
from spanlake.ui.sessions import Sessions

log = logging.getLogger("spanlake")


async def start_services(settings: Settings) -> Services:
    """Construct and start every part in order; on a failure, stop what started and re-raise."""
    sections = settings.sections  # parsed when the settings loaded
    # Before the store opens, so a bad key entry, scorer or rules file fails fast.
    keys = KeyRing.from_settings(settings, os.environ)
    registry = ScorerRegistry.load(sections.scoring)
    parts = Lifecycle()
    parts.started("scorer registry", registry.aclose)
    try:
        ruleset = load_rules(settings.rules, registry.catalog()) if settings.rules else RuleSet()
        metrics = Metrics()
        store_config = StoreConfig(
            url=settings.store,
            data_dir=settings.data_dir,
            data_path=settings.data_path,
            memory_limit=settings.memory_limit,
            threads=settings.duckdb_threads,
        )
        store = await asyncio.to_thread(Store.open, store_config)
        parts.started("store", lambda: asyncio.to_thread(store.close))
        if not store_config.is_lake:
            metrics.watch_wal(embedded_wal_file(store_config))
        # On a lake too the log is on this replica's own disk, in its data directory.
        ingest_log = await asyncio.to_thread(
            IngestLog.open, store_config.data_dir / "ingest-log", LogConfig(max_unloaded_bytes=settings.log_max_bytes)
        )
        ingest_log.start()
        parts.started("ingest log", ingest_log.close)
        metrics.watch_log(ingest_log)
        loader = Loader(ingest_log, store, metrics, LoaderConfig(max_spans=settings.load_max_spans))
        receiver = Receiver(
            ingest_log,
            metrics,
            ReceiverConfig(
                max_message_bytes=settings.max_message_bytes,
                max_inflight_bytes=max(settings.max_inflight_bytes, settings.max_message_bytes),
                decode_workers=settings.decode_workers,
            ),
            on_append=loader.appended,
        )
        parts.started("receiver", receiver.close)
        fence = await parts.start("write fence", WriteFence(store, locks.new_owner()))
        rule_counters = RuleCounters()  # capture counts matches, scoring rules' jobs count calls
        shutdown = asyncio.Event()
        scoring = await parts.start("scoring", ScoringComponent(
            store, registry, sections.scoring, fence=fence, rule_counters=rule_counters, shutdown=shutdown,
        ))
        capture = await parts.start("capture", CaptureRules(
            store, settings.rules, ruleset, quiet_seconds=settings.trace_quiet_seconds,
            scorers=registry.catalog(), fence=fence, counters=rule_counters,
        ))
        loader.add_stage(capture.stage)
        runs = await parts.start("runs", RunsComponent(
            store, sections.runs, sections.pricing, registry, outbound=sections.outbound, shutdown=shutdown,
        ))
        maintenance = await parts.start("maintenance", Maintenance(store, sections.maintenance, fence))
        export_metrics(metrics.registry, maintenance)
        await parts.start("loader", loader)
    except BaseException:
        await parts.stop()
        raise
    return Services(
        settings=settings, store=store, log=ingest_log, loader=loader, receiver=receiver, metrics=metrics,
        keys=keys, ui_sessions=Sessions(keys), outbound=sections.outbound, scoring=scoring, capture=capture,
        runs=runs, maintenance=maintenance, parts=parts, shutdown=shutdown,
    )


class _QuietSignalsServer(uvicorn.Server):
    """uvicorn without its own signal handling: the serve loop owns shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    services = await start_services(settings)
    grpc_server: grpc.aio.Server | None = None
    try:
        handlers = [ExportHandler(services.receiver, services.keys, services.metrics, s) for s in (TRACES, LOGS)]
        grpc_server, grpc_port = build_grpc_server(
            handlers, host=settings.host, port=settings.grpc_port, max_message_bytes=settings.max_message_bytes
        )
        await grpc_server.start()
        http = _QuietSignalsServer(
            uvicorn.Config(
                build_app(services),
                host=settings.host,
                port=settings.http_port,
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=10,
            )
        )
        http_task = asyncio.create_task(http.serve(), name="spanlake-http")
        while not http.started:
            if http_task.done():
                await http_task
                raise OSError(f"HTTP server could not start on {settings.host}:{settings.http_port}")
            await asyncio.sleep(0.02)
        services.ready = True
        log.info(
            "spanlake serving: OTLP/gRPC %s:%d, OTLP/HTTP + API http://%s:%d, store %s",
            settings.host, grpc_port, settings.host, settings.http_port, services.store.config.url,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.wait([asyncio.create_task(stop.wait()), http_task], return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping: refusing new requests; the ingest log keeps what is not loaded yet")
        services.begin_stop()
        http.should_exit = True
        await asyncio.gather(grpc_server.stop(grace=10), http_task, return_exceptions=True)
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=0)
        await services.stop()
    log.info("stopped cleanly")
