"""Prometheus metrics, one registry per server so tests can run several servers in one process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

from spanlake.store.writer import AppendResult

if TYPE_CHECKING:
    from spanlake.ingest.loader import Loader
    from spanlake.ingest.log import IngestLog


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.spans_received = Counter("spanlake_spans_received", "Spans received in export requests", registry=r)
        self.spans_stored = Counter("spanlake_spans_stored", "Spans committed to the store", registry=r)
        self.spans_duplicate = Counter(
            "spanlake_spans_duplicate", "Spans dropped because the same (trace_id, span_id) was stored", registry=r
        )
        self.spans_rejected = Counter(
            "spanlake_spans_rejected", "Spans refused, by reason", ["reason"], registry=r
        )
        self.log_records_received = Counter(
            "spanlake_log_records_received", "OTLP log records received in export requests", registry=r
        )
        self.log_records_rejected = Counter(
            "spanlake_log_records_rejected", "Log records refused: not GenAI events, or without ids", registry=r
        )
        self.requests = Counter(
            "spanlake_export_requests", "OTLP export requests by protocol and outcome", ["protocol", "outcome"], registry=r
        )
        self.commit_seconds = Histogram(
            "spanlake_commit_seconds",
            "Duration of one load transaction (ingest log -> store)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.load_spans = Histogram(
            "spanlake_load_transaction_spans",
            "Spans per load transaction",
            buckets=(1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000),
            registry=r,
        )
        self.log_bytes = Gauge("spanlake_log_bytes", "Bytes of the ingest log on disk", registry=r)
        self.log_unloaded_bytes = Gauge(
            "spanlake_log_unloaded_bytes", "Ingest log bytes not loaded into the store yet (back-pressure bound)", registry=r
        )
        self.log_segments = Gauge("spanlake_log_segments", "Segment files of the ingest log", registry=r)
        self.log_fsyncs = Gauge("spanlake_log_fsyncs", "Group fsyncs of the ingest log since start", registry=r)
        self.loader_lag_spans = Gauge("spanlake_loader_lag_spans", "Acknowledged spans not loaded yet", registry=r)
        self.loader_lag_seconds = Gauge(
            "spanlake_loader_lag_seconds", "Age of the oldest acknowledged record not loaded yet", registry=r
        )
        # Where the resident memory goes (read at each scrape): DuckDB's buffer manager and
        # Arrow's allocator; the process collector adds process_resident_memory_bytes.
        self.store_memory_bytes = Gauge(
            "spanlake_store_memory_bytes", "Memory held by the store's DuckDB buffer manager", registry=r
        )
        self.arrow_memory_bytes = Gauge(
            "spanlake_arrow_memory_bytes", "Memory allocated by Arrow (decoded batches, load slices)", registry=r
        )
        self.arrow_memory_bytes.set_function(lambda: pa.total_allocated_bytes())
        ProcessCollector(registry=r)
        self.wal_bytes = Gauge(
            "spanlake_store_wal_bytes",
            "Size of the embedded store's write-ahead log; it should fall back at every checkpoint",
            registry=r,
        )

    def watch_log(self, ingest_log: "IngestLog") -> None:
        self.log_bytes.set_function(lambda: ingest_log.disk_bytes)
        self.log_unloaded_bytes.set_function(lambda: ingest_log.unloaded_bytes)
        self.log_segments.set_function(lambda: ingest_log.segment_count)
        self.log_fsyncs.set_function(lambda: ingest_log.fsyncs)

    def watch_loader(self, loader: "Loader") -> None:
        self.loader_lag_spans.set_function(lambda: loader.unloaded_spans)
        self.loader_lag_seconds.set_function(loader.lag_seconds)

    def watch_wal(self, wal: Path) -> None:
        """A WAL that only grows means checkpoints stopped (a transaction left open, say)."""
        self.wal_bytes.set_function(lambda: _file_size(wal))

    def on_load(self, seconds: float, result: AppendResult, spans: int) -> None:
        self.commit_seconds.observe(seconds)
        self.load_spans.observe(spans)
        self.spans_stored.inc(result.stored)
        self.spans_duplicate.inc(result.duplicates)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _file_size(path: Path) -> float:
    try:
        return float(os.stat(path).st_size)
    except FileNotFoundError:
        return 0.0  # no WAL: everything is in the database file
