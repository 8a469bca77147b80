"""The one entry point both OTLP protocols call, for every signal: bytes in, rows in the ingest
log, result out. Spans and GenAI log events take the same path, so they get the same
durability (acked after the fsync) and the same back-pressure.

Memory stays bounded whatever clients do: a request is refused when it is over the size limit,
when the bytes of requests being decoded exceed the in-flight budget, or when the ingest log's
unloaded bytes are at their bound. Decoding (CPU work) and encoding the batch as a log record
run off the event loop, in a thread or in processes; the caller's ack waits for the fsync.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import zlib
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from spanlake.ingest.ack import IngestError, Outcome
from spanlake.ingest.batch_bytes import encode_batch
from spanlake.ingest.log import IngestLog
from spanlake.ingest.signals import SIGNALS, TRACES, Signal
from spanlake.ingest.spanrows import DecodeError
from spanlake.metrics import Metrics

Encoding = Literal["protobuf", "json"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiverConfig:
    """Limits on what one request, and all requests together, may hold in memory."""

    max_message_bytes: int = 64 * 1024 * 1024
    max_inflight_bytes: int = 256 * 1024 * 1024
    decode_workers: int = 0  # 0: decode on a thread of this process; N: a pool of N processes

    def validate(self) -> None:
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be >= 1024, got {self.max_message_bytes}")
        if self.max_inflight_bytes < self.max_message_bytes:
            raise ValueError(
                f"max_inflight_bytes ({self.max_inflight_bytes}) must be >= max_message_bytes ({self.max_message_bytes})"
            )
        if self.decode_workers < 0:
            raise ValueError(f"decode_workers must be >= 0, got {self.decode_workers}")


@dataclass(frozen=True)
class Accepted:
    """What crosses back from the decoder: the batch as log record bytes, and partial success.
    `spans` counts the batch's rows: spans, or events for the logs signal."""

    payload: bytes
    spans: int
    rejected: int
    error_message: str


def _decode(signal: str, encoding: Encoding, body: bytes) -> Accepted:
    """Runs in a decode thread or process: takes the signal by name, which pickles small."""
    decoded = SIGNALS[signal].decoders[encoding](body)
    spans = decoded.spans.num_rows
    payload = encode_batch(decoded.spans) if spans else b""
    return Accepted(payload, spans, decoded.rejected, decoded.error_message)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Decode workers must not be forked from the server: by the first request it runs gRPC and
    DuckDB threads, and a child forked from a threaded process can inherit their locks mid-use
    (measured: in 4 of 15 `bench/ingest.py --decode-workers 2` runs a worker died at once, after
    which every request failed with BrokenProcessPool and SIGTERM hung). A fork server is a clean,
    single-threaded parent, and forks each worker from there.
    """
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo gzip/deflate, refusing output over `limit` bytes without inflating it all."""
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "deflate", "x-gzip"):
        raise IngestError(Outcome.UNSUPPORTED_MEDIA, f"unsupported Content-Encoding {content_encoding!r}; use gzip or identity")
    wbits = 16 + zlib.MAX_WBITS if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestError(Outcome.INVALID, f"body is not valid {coding}: {exc}") from exc
    if len(out) > limit:
        raise IngestError(Outcome.TOO_LARGE, f"decompressed body exceeds the {limit}-byte limit")
    if not inflater.eof:
        raise IngestError(Outcome.INVALID, f"body is truncated {coding} data")
    return out


class Receiver:
    """Admission, decoding and the hand-off to the ingest log."""

    def __init__(
        self,
        ingest_log: IngestLog,
        metrics: Metrics,
        config: ReceiverConfig = ReceiverConfig(),
        *,
        on_append: Callable[[int], None] = lambda spans: None,
    ):
        config.validate()
        self._log = ingest_log
        self._on_append = on_append  # told how many rows each fsynced append added (the loader)
        self._metrics = metrics
        self.config = config
        self._inflight_bytes = 0
        self._executor: Executor = self._new_executor()

    def _new_executor(self) -> Executor:
        if self.config.decode_workers:
            return ProcessPoolExecutor(max_workers=self.config.decode_workers, mp_context=_worker_context())
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanlake-decode")

    def _replace_broken_pool(self, broken: Executor) -> None:
        """A decoder process died (OOM killer, a crash): start a new pool for the next requests."""
        if self._executor is broken:
            log.error("a decode worker process died; starting a new pool")
            self._executor = self._new_executor()
            broken.shutdown(wait=False, cancel_futures=True)

    async def accept(self, body: bytes, encoding: Encoding, signal: Signal = TRACES) -> Accepted:
        """Decode one export request and append it to the log; returns it (for partial success)."""
        size = len(body)
        if size > self.config.max_message_bytes:
            raise IngestError(
                Outcome.TOO_LARGE, f"request of {size} bytes exceeds the {self.config.max_message_bytes}-byte limit"
            )
        if self._inflight_bytes + size > self.config.max_inflight_bytes and self._inflight_bytes > 0:
            raise IngestError(Outcome.QUEUE_FULL, "too many bytes being decoded; retry later")
        self._log.check_room(size)
        self._inflight_bytes += size
        try:
            loop = asyncio.get_running_loop()
            executor = self._executor
            try:
                decoded = await loop.run_in_executor(executor, _decode, signal.name, encoding, body)
            except DecodeError as exc:
                raise IngestError(Outcome.INVALID, str(exc)) from exc
            except BrokenExecutor:
                self._replace_broken_pool(executor)
                raise IngestError(Outcome.STORE_FAILED, "the decoder restarted; retry") from None
        finally:
            self._inflight_bytes -= size
        if signal is TRACES:
            self._metrics.spans_received.inc(decoded.spans + decoded.rejected)
            if decoded.rejected:
                self._metrics.spans_rejected.labels("invalid_span").inc(decoded.rejected)
        else:
            self._metrics.log_records_received.inc(decoded.spans + decoded.rejected)
            if decoded.rejected:
                self._metrics.log_records_rejected.inc(decoded.rejected)
        if decoded.spans:
            await self._log.append(decoded.payload, decoded.spans)
            self._on_append(decoded.spans)
        return decoded

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

