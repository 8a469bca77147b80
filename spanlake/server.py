"""`spanlake serve`: gRPC and HTTP in one asyncio process, wired to one store.

Start order: store, ingest log, loader, receiver, components, listeners. A stop (SIGTERM/SIGINT)
refuses new work, lets the log fsync what it was writing, stops the loader after the transaction
in progress and exits 0: whatever is not loaded yet stays in the log and loads at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import grpc
import uvicorn

from spanlake.api.app import build_app
from spanlake.auth import KeyRing
from spanlake.components import start_components, stop_components
from spanlake.ingest.loader import Loader, LoaderConfig
from spanlake.ingest.log import IngestLog, LogConfig
from spanlake.ingest.otlp_grpc import ExportHandler, build_grpc_server
from spanlake.ingest.receiver import Receiver, ReceiverConfig
from spanlake.ingest.signals import LOGS, TRACES
from spanlake.metrics import Metrics
from spanlake.outbound import OutboundPolicy
from spanlake.settings import Settings
from spanlake.store import Store, StoreConfig
from spanlake.store.connection import embedded_wal_file
from spanlake.ui.sessions import Sessions

if TYPE_CHECKING:
    from spanlake.capture.component import CaptureRules
    from spanlake.runs.component import RunsComponent
    from spanlake.scoring.component import ScoringComponent
    from spanlake.store.maintenance import Maintenance

log = logging.getLogger("spanlake")


@dataclass
class Services:
    """The parts of a running server; routes reach them through `app.state.services`."""

    settings: Settings
    store: Store
    log: IngestLog
    loader: Loader
    receiver: Receiver
    metrics: Metrics
    keys: KeyRing
    ui_sessions: Sessions
    ready: bool = False
    stopping: bool = False
    # Where URLs that arrive through the API may point (dataset run targets); see outbound.py.
    outbound: OutboundPolicy = field(default_factory=lambda: OutboundPolicy.from_sections({}))
    # Background components (components.py), set once started; None before, after, or when off.
    scoring: "ScoringComponent | None" = None
    capture: "CaptureRules | None" = None
    runs: "RunsComponent | None" = None
    maintenance: "Maintenance | None" = None

    @classmethod
    async def start(cls, settings: Settings) -> "Services":
        # Before the store opens: a bad key entry or allow pattern fails fast.
        keys = KeyRing.from_settings(settings, os.environ)
        outbound = OutboundPolicy.from_sections(settings.sections)
        metrics = Metrics()
        store_config = StoreConfig(
            url=settings.store,
            data_dir=Path(settings.data).expanduser(),
            data_path=settings.data_path,
            memory_limit=settings.memory_limit,
            threads=settings.duckdb_threads,
        )
        store = await asyncio.to_thread(Store.open, store_config)
        if not store_config.is_lake:
            metrics.watch_wal(embedded_wal_file(store_config))
        try:
            # On a lake too the log is on this replica's own disk, in its data directory.
            ingest_log = await asyncio.to_thread(
                IngestLog.open, store_config.data_dir / "ingest-log", LogConfig(max_unloaded_bytes=settings.log_max_bytes)
            )
        except BaseException:
            await asyncio.to_thread(store.close)
            raise
        ingest_log.start()
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
        )
        receiver.on_append = loader.appended
        return cls(settings, store, ingest_log, loader, receiver, metrics, keys, Sessions(keys), outbound=outbound)

    async def stop(self) -> None:
        """Stop taking spans, stop the loader, release everything, even after a partial start.

        The loader stops after its transaction in progress: the log holds the rest, fsynced."""
        self.ready = False
        self.stopping = True
        self.log.stop_accepting()
        await stop_components(self)
        await self.loader.stop()
        await self.log.close()
        self.receiver.close()
        await asyncio.to_thread(self.store.close)


class _QuietSignalsServer(uvicorn.Server):
    """uvicorn without its own signal handling: the serve loop owns shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    services = await Services.start(settings)
    grpc_server: grpc.aio.Server | None = None
    try:
        await start_components(services)
        # After the components: capture adds its commit stage, which replayed records need too.
        await services.loader.start()
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
        services.ready = False
        services.stopping = True
        http.should_exit = True
        await asyncio.gather(grpc_server.stop(grace=10), http_task, return_exceptions=True)
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=0)
        await services.stop()
    log.info("stopped cleanly")
