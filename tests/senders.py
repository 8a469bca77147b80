"""Clients that keep sending whole traces until stopped, recording which ones were acknowledged."""

from __future__ import annotations

import threading

import grpc

from otlp_builders import llm_trace, request
from test_ingest_grpc import export


class AckingClients:
    """`n` threads, each exporting 10-span traces to `target` until stopped or refused."""

    def __init__(self, target: str, n: int = 4, spans_per_trace: int = 10):
        self.target = target
        self.spans_per_trace = spans_per_trace
        self._acked: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(n)]

    def _run(self) -> None:
        while not self._stop.is_set():
            trace_id, spans = llm_trace(self.spans_per_trace)
            try:
                export(self.target, request(spans))
            except grpc.RpcError:
                return
            with self._lock:
                self._acked.append(trace_id)

    def __enter__(self) -> "AckingClients":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    @property
    def acked(self) -> list[str]:
        with self._lock:
            return list(self._acked)

    def wait_for(self, count: int) -> None:
        while len(self.acked) < count:
            self._stop.wait(0.02)
