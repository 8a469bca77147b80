"""Serving a small Starlette app on a thread, for test endpoints (run targets, scoring backends)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn


class ThreadServer:
    """uvicorn on 127.0.0.1:`port` (or `host`) in a daemon thread; `start()` returns once it accepts."""

    def __init__(self, app: Any, port: int, name: str, *, host: str = "127.0.0.1", **config: Any):
        options = dict(log_level="warning", access_log=False, lifespan="off", ws="none", timeout_graceful_shutdown=1)
        options.update(config)
        self.name = name
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
