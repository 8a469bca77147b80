"""The ingest log: an ack means the decoded batch is in this fsynced, checksummed segment log.

The store loads behind it (ingest/loader.py), so an ack never waits for a DuckDB commit or a
checkpoint. Models: Tempo's ingester WAL and the Collector's persistent queue.

Layout: `<dir>/<start position>.seg` segment files, a `log-id` file naming this log in the
store's position table, and a `LOCK` file held while a server uses the directory. A position is
a byte offset into the concatenation of every segment ever written: it only grows, and each
record starts and ends on one. A record is a header (magic, payload length, span count, append
time, CRC-32 of header and payload) followed by the payload, an Arrow IPC stream of the batch.

One thread writes: it takes every append waiting, writes them, and fsyncs once (group fsync),
so the number of fsyncs follows the disk's pace, not the request rate. A torn tail can only
hold unacknowledged records (an ack follows the fsync); opening the log finds the last intact
record and cuts the file there.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from spanlake.ingest.ack import IngestError, Outcome

log = logging.getLogger(__name__)

_MAGIC = b"SLR1"
_PREFIX = struct.Struct("<4sIId")  # magic, payload length, spans, appended_at (unix seconds)
_HEADER = struct.Struct("<4sIIdI")  # the prefix, then CRC-32 of prefix + payload
HEADER_BYTES = _HEADER.size
_SUFFIX = ".seg"


class LogCorrupt(Exception):
    """An acknowledged record failed its checksum: the disk lost data we promised to keep."""


@dataclass(frozen=True)
class LogConfig:
    """Bounds of the log.

    `max_unloaded_bytes` is the back-pressure bound: appended bytes the loader has not loaded
    yet. At ~1.7 KB per span on disk, 2 GiB holds over a million spans: a minute or more of
    overload at the rates bench/ingest.py measures.
    """

    max_unloaded_bytes: int = 2 * 1024**3
    segment_bytes: int = 64 * 1024**2
    retry_after_seconds: float = 1.0

    def validate(self) -> None:
        if self.max_unloaded_bytes < 1024:
            raise ValueError(f"log max bytes must be >= 1024, got {self.max_unloaded_bytes}")
        if self.segment_bytes < 1024:
            raise ValueError(f"log segment bytes must be >= 1024, got {self.segment_bytes}")


@dataclass(frozen=True)
class Record:
    position: int  # where the record starts
    end: int  # where the next one starts
    spans: int
    appended_at: float
    payload: bytes


@dataclass
class _Append:
    payload: bytes
    spans: int
    future: asyncio.Future[int]


class IngestLog:
    """Append (group fsync), read for the loader, and release what the store holds."""

    def __init__(self, directory: Path, config: LogConfig, log_id: str, lock_fd: int, segments: list[int], end: int):
        self.directory = directory
        self.config = config
        self.log_id = log_id
        self._lock_fd = lock_fd
        self._segments = segments  # start positions, ascending; the last is the active one
        self._segments_lock = threading.Lock()
        self.durable_end = end  # everything before this position is fsynced
        self.released = segments[0] if segments else end  # positions below it are loaded and gone
        self.loaded = self.released  # the loader's committed position (set by the loader)
        self._pending: list[_Append] = []
        self._pending_bytes = 0
        self._cond = threading.Condition()
        self._closing = False
        self._fd = self._open_active()
        self._thread = threading.Thread(target=self._write_loop, name="spanlake-log", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.fsyncs = 0

    # Opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, config: LogConfig = LogConfig()) -> "IngestLog":
        """Open (or create) the log in `directory`, cutting a torn tail off the last segment."""
        config.validate()
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise RuntimeError(f"another spanlake server is using the ingest log in {directory}") from None
        log_id = _read_or_create_id(directory / "log-id")
        segments = sorted(int(p.name[: -len(_SUFFIX)]) for p in directory.glob(f"*{_SUFFIX}") if p.name[:-len(_SUFFIX)].isdigit())
        if not segments:
            segments = [0]
            _create_segment(directory, 0)
        end = _recover_tail(directory, segments[-1])
        return cls(directory, config, log_id, lock_fd, segments, end)

    def _open_active(self) -> int:
        fd = os.open(_segment_path(self.directory, self._segments[-1]), os.O_WRONLY | os.O_APPEND)
        return fd

    def start(self) -> None:
        """Begin accepting appends (call on the event loop that awaits them)."""
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    # Appending ---------------------------------------------------------------------------------

    @property
    def unloaded_bytes(self) -> int:
        return self.durable_end + self._pending_bytes - self.loaded

    def check_room(self, incoming: int = 0) -> None:
        """Refuse at once when the unloaded log is at its bound (retryable)."""
        if self._closing:
            raise IngestError(Outcome.SHUTTING_DOWN, "server is shutting down; retry against another replica or later")
        unloaded = self.unloaded_bytes
        if unloaded > 0 and unloaded + incoming > self.config.max_unloaded_bytes:
            raise IngestError(
                Outcome.QUEUE_FULL,
                f"ingest log is full ({unloaded} bytes not loaded yet); retry later",
                self.config.retry_after_seconds,
            )

    async def append(self, payload: bytes, spans: int) -> int:
        """Resolve with the record's end position once it is fsynced; raise IngestError if not."""
        self.check_room(len(payload) + HEADER_BYTES)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        with self._cond:
            self._pending.append(_Append(payload, spans, future))
            self._pending_bytes += len(payload) + HEADER_BYTES
            self._cond.notify()
        return await future

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                group, self._pending = self._pending, []
            self._write_group(group)

    def _write_group(self, group: list[_Append]) -> None:
        now = time.time()
        parts: list[bytes] = []
        ends: list[int] = []
        position = self.durable_end
        for item in group:
            prefix = _PREFIX.pack(_MAGIC, len(item.payload), item.spans, now)
            crc = zlib.crc32(item.payload, zlib.crc32(prefix))
            parts.append(prefix + struct.pack("<I", crc))
            parts.append(item.payload)
            position += HEADER_BYTES + len(item.payload)
            ends.append(position)
        size = position - self.durable_end
        error: BaseException | None = None
        try:
            self._roll_if_full()
            _write_all(self._fd, parts)
            os.fdatasync(self._fd)
        except OSError as exc:
            error = exc
            self._cut_back()
        else:
            self.durable_end = position
            self.fsyncs += 1
        with self._cond:
            self._pending_bytes -= size
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle, group, ends, error, self.config.retry_after_seconds)

    def _roll_if_full(self) -> None:
        """Start a new segment when the active one is full (the loader can then release it)."""
        active = self._segments[-1]
        if self.durable_end - active < self.config.segment_bytes:
            return
        _create_segment(self.directory, self.durable_end)
        fd = os.open(_segment_path(self.directory, self.durable_end), os.O_WRONLY | os.O_APPEND)
        os.close(self._fd)
        self._fd = fd
        with self._segments_lock:
            self._segments.append(self.durable_end)

    def _cut_back(self) -> None:
        """After a failed write (a full disk), drop its partial bytes: nothing of it was acked."""
        try:
            os.ftruncate(self._fd, self.durable_end - self._segments[-1])
        except OSError as exc:
            log.error("could not cut a failed write off the ingest log (replay will drop it): %s", exc)

    # Reading (the loader's thread) -------------------------------------------------------------

    def read(self, position: int, max_spans: int, max_bytes: int = 256 * 1024**2) -> list[Record]:
        """Fsynced records from `position` on, at least one if any, up to the given amounts."""
        records: list[Record] = []
        spans = size = 0
        end = self.durable_end
        while position < end and (not records or (spans < max_spans and size < max_bytes)):
            start = self._segment_of(position)
            with open(_segment_path(self.directory, start), "rb") as f:
                f.seek(position - start)
                read_here = 0
                while position < end and (not records or (spans < max_spans and size < max_bytes)):
                    header = f.read(HEADER_BYTES)
                    if not header:
                        if not read_here:
                            raise LogCorrupt(f"segment {start} ends before position {position}")
                        break  # the rest is in the next segment
                    read_here += 1
                    record = _parse(header, f, position)
                    records.append(record)
                    position = record.end
                    spans += record.spans
                    size += len(record.payload)
        return records

    def first_unloaded_at(self) -> float | None:
        """When the oldest record the loader has not loaded was appended (None: all loaded)."""
        if self.loaded >= self.durable_end:
            return None
        start = self._segment_of(self.loaded)
        with open(_segment_path(self.directory, start), "rb") as f:
            f.seek(self.loaded - start)
            header = f.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            return None
        return _PREFIX.unpack(header[: _PREFIX.size])[3]

    def count_spans(self, position: int) -> int:
        """Spans in the records from `position` to the end (headers only: no payload is read)."""
        total = 0
        end = self.durable_end
        while position < end:
            start = self._segment_of(position)
            with open(_segment_path(self.directory, start), "rb") as f:
                f.seek(position - start)
                while position < end:
                    header = f.read(HEADER_BYTES)
                    if len(header) < HEADER_BYTES:
                        break
                    magic, length, spans, _ = _PREFIX.unpack(header[: _PREFIX.size])
                    total += spans
                    position += HEADER_BYTES + length
                    f.seek(length, os.SEEK_CUR)
        return total

    def _segment_of(self, position: int) -> int:
        with self._segments_lock:
            segments = list(self._segments)
        for index in range(len(segments) - 1, -1, -1):
            if segments[index] <= position:
                return segments[index]
        raise LogCorrupt(f"position {position} is before the oldest segment ({segments[0]})")

    # Releasing ---------------------------------------------------------------------------------

    def mark_loaded(self, position: int) -> None:
        """The store holds everything before `position` durably: delete the segments it covers."""
        if position > self.durable_end:
            raise LogCorrupt(
                f"the store says this log was loaded up to {position}, past its end {self.durable_end}: "
                f"the log directory {self.directory} is not the one this store loaded from"
            )
        self.loaded = max(self.loaded, position)
        with self._segments_lock:
            done = [s for s, nxt in zip(self._segments, self._segments[1:]) if nxt <= self.loaded]
            self._segments = self._segments[len(done):]
        for start in done:
            try:
                os.unlink(_segment_path(self.directory, start))
            except FileNotFoundError:
                pass
        if done:
            self.released = self._segments[0]

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def disk_bytes(self) -> int:
        return self.durable_end - self.released

    # Closing -----------------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()

    async def close(self) -> None:
        """Write and fsync what is waiting, then release the directory."""
        self.stop_accepting()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        os.close(self._fd)
        os.close(self._lock_fd)

    def close_sync(self) -> None:
        """Close a log that was never started (tools, a failed start)."""
        if self._thread.is_alive():
            self.stop_accepting()
            self._thread.join()
        os.close(self._fd)
        os.close(self._lock_fd)


def _settle(group: list[_Append], ends: list[int], error: BaseException | None, retry_after: float) -> None:
    for item, end in zip(group, ends):
        if item.future.done():
            continue  # the caller went away (a cancelled request); the record stays, unacked
        if error is None:
            item.future.set_result(end)
        else:
            full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
            reason = "disk is full" if full else f"write failed: {error}"
            item.future.set_exception(
                IngestError(Outcome.STORE_FAILED, f"ingest log could not take the request ({reason}); retry later", retry_after)
            )


def _write_all(fd: int, parts: list[bytes]) -> None:
    data = memoryview(b"".join(parts))
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _parse(header: bytes, f, position: int) -> Record:
    if len(header) < HEADER_BYTES:
        raise LogCorrupt(f"record at {position} is cut short")
    magic, length, spans, appended_at, crc = _HEADER.unpack(header)
    if magic != _MAGIC:
        raise LogCorrupt(f"no record starts at {position}")
    payload = f.read(length)
    if len(payload) < length or zlib.crc32(payload, zlib.crc32(header[: _PREFIX.size])) != crc:
        raise LogCorrupt(f"record at {position} fails its checksum")
    return Record(position, position + HEADER_BYTES + length, spans, appended_at, payload)


def _recover_tail(directory: Path, start: int) -> int:
    """Walk the active segment, cut it after its last intact record; return the log's end."""
    path = _segment_path(directory, start)
    good = 0
    with open(path, "rb") as f:
        while True:
            header = f.read(HEADER_BYTES)
            try:
                record = _parse(header, f, start + good)
            except LogCorrupt:
                break
            good = record.end - start
    size = path.stat().st_size
    if size != good:
        # Like PostgreSQL's WAL replay, the log ends at its first invalid record. After a crash
        # that is the torn write no client was acked for; a disk that corrupted an older record
        # would lose what follows it, so the cut bytes are kept beside the log for inspection.
        kept = path.with_suffix(".torn")
        with open(path, "rb") as f:
            f.seek(good)
            kept.write_bytes(f.read())
        log.warning(
            "ingest log %s: dropping a torn tail of %d bytes at offset %d (never acknowledged if the "
            "last write was cut by a crash); the bytes are kept in %s",
            path.name, size - good, good, kept.name,
        )
        with open(path, "r+b") as f:
            f.truncate(good)
            os.fsync(f.fileno())
    return start + good


def _segment_path(directory: Path, start: int) -> Path:
    return directory / f"{start:020d}{_SUFFIX}"


def _create_segment(directory: Path, start: int) -> None:
    # Not O_EXCL: a file left by a roll that failed (full disk) holds nothing acknowledged.
    fd = os.open(_segment_path(directory, start), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.fsync(fd)
    os.close(fd)
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_or_create_id(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        log_id = uuid.uuid4().hex
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(log_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return log_id
