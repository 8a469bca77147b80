"""Prometheus metrics, one registry per server so tests can run several servers in one process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from spanlake.store.writer import AppendResult


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
        self.requests = Counter(
            "spanlake_export_requests", "OTLP export requests by protocol and outcome", ["protocol", "outcome"], registry=r
        )
        self.commit_seconds = Histogram(
            "spanlake_commit_seconds",
            "Duration of one group commit",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.queue_depth = Gauge("spanlake_queue_depth_spans", "Spans waiting in the write queue", registry=r)
        self.wal_bytes = Gauge(
            "spanlake_store_wal_bytes",
            "Size of the embedded store's write-ahead log; it should fall back at every checkpoint",
            registry=r,
        )

    def watch_queue_depth(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def watch_wal(self, wal: Path) -> None:
        """A WAL that only grows means checkpoints stopped (a transaction left open, say)."""
        self.wal_bytes.set_function(lambda: _file_size(wal))

    def on_commit(self, seconds: float, result: AppendResult) -> None:
        self.commit_seconds.observe(seconds)
        self.spans_stored.inc(result.stored)
        self.spans_duplicate.inc(result.duplicates)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _file_size(path: Path) -> float:
    try:
        return float(os.stat(path).st_size)
    except FileNotFoundError:
        return 0.0  # no WAL: everything is in the database file
