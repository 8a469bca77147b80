"""Read-your-writes: a request that starts after an export was acknowledged sees its spans.

An ack means the spans are in the ingest log; the loader stores them a moment later. Requests
that name a trace, a span, an item or a dataset wait (bounded) until the loader has reached the
log position fsynced when they arrived, and get 503 with Retry-After if it does not get there in
time. Listing and searching traces wait briefly too, then answer from what is loaded: a script
that exports and then lists sees its traces, and a loader far behind under overload cannot make
the overview pages fail.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from spanlake.api.errors import error_response
from spanlake.services import Services

log = logging.getLogger(__name__)

WAIT_SECONDS = 10.0
LIST_WAIT_SECONDS = 2.0
SLOW_WAIT_SECONDS = 1.0  # a wait this long is logged: the loader is behind or stuck

# Routes that touch no span data, and the trace list and search (answered from what is loaded).
_UNWAITED_EXACT = frozenset(
    {"/api/whoami", "/login", "/logout", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/traces", "/v1/logs"}
)
_UNWAITED_PREFIXES = ("/static/",)
_LISTS = frozenset({"/api/traces", "/api/spans", "/", "/traces"})


def waits_for_loader(path: str) -> bool:
    return path not in _UNWAITED_EXACT and not path.startswith(_UNWAITED_PREFIXES)


class ReadYourWrites:
    """ASGI middleware; innermost, so unauthenticated requests never wait."""

    def __init__(self, app: ASGIApp, *, wait_seconds: float = WAIT_SECONDS):
        self.app = app
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and waits_for_loader(scope["path"]):
            services: Services = scope["app"].state.services
            acked = services.log.durable_end
            is_list = scope["path"] in _LISTS
            started = time.monotonic()
            loaded = await services.loader.wait_loaded(acked, LIST_WAIT_SECONDS if is_list else self.wait_seconds)
            waited = time.monotonic() - started
            if waited >= SLOW_WAIT_SECONDS:
                log.warning(
                    "%s %s waited %.1f s for the loader (%s; %d spans behind; last load error: %s)",
                    scope["method"], scope["path"], waited, "caught up" if loaded else "still behind",
                    services.loader.unloaded_spans, services.loader.last_error,
                )
            if not loaded and not is_list:
                behind = services.loader.unloaded_spans
                response = error_response(
                    503,
                    "loading",
                    f"acknowledged spans are still being loaded ({behind} behind); retry shortly",
                    headers={"Retry-After": "1"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
