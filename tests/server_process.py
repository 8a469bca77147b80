"""A real `spanlake serve` child process on free ports, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lake_env import store_args_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """Starts, stops, kills and restarts one server with a fixed data dir and ports."""

    def __init__(self, data_dir: Path, *extra_args: str, env: dict[str, str] | None = None):
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        # SPANLAKE_TEST_STORE runs the suite on a DuckLake store (tests/lake_env.py); chosen once
        # here so a restart reopens the same lake.
        self.store_args = store_args_for(self.data_dir, self.extra_args)
        self.env = env or {}
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen | None = None
        fd, self.log_path = tempfile.mkstemp(prefix="spanlake-server-", suffix=".log")
        os.close(fd)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def wait_loaded(self, timeout: float = 60.0) -> None:
        """Until the loader has stored every acknowledged span: fixtures that seed data and then
        list it (lists wait only briefly for the loader, by design) call this once."""
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.http_url}/readyz", timeout=10).json()["loader"]["behind_spans"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the loader did not catch up in {timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        args = [
            sys.executable, "-m", "spanlake", "serve",
            "--data", str(self.data_dir),
            "--grpc-port", str(self.grpc_port),
            "--http-port", str(self.http_port),
            *self.store_args,
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.http_url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"server ignored SIGTERM for {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> "ServerProcess":
        return self.start()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
