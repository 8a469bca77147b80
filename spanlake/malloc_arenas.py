"""Fewer glibc malloc arenas for the server process: memory freed by one thread is reused by others.

glibc gives threads their own heap arenas (up to eight per core) and keeps what each one freed
for that arena. The server's decode, log, loader, gRPC and DuckDB threads all allocate, so under
overload each arena grew to its own high-water mark: 6+ arenas of 38-65 MB in one overloaded
server (pmap), and peak RSS 1,187 MB against 1,057 MB with two arenas, the same load
(bench/ingest.py overload phase, bench/RESULTS.md). CPU cost was not measurable beside that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

SERVER_ARENAS = 2
_M_ARENA_MAX = -8  # from glibc's malloc.h


def cap_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's arenas unless MALLOC_ARENA_MAX already says how many; True if capped."""
    if os.environ.get("MALLOC_ARENA_MAX") or platform.libc_ver()[0] != "glibc":
        return False  # the operator's choice, or another libc (musl has no arenas to cap)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError) as exc:
        log.debug("could not cap malloc arenas: %s", exc)
        return False
