"""Lake stores for tests: a fresh PostgreSQL database per lake, a local S3 server, store flags.

`SPANLAKE_TEST_STORE` picks the store every `ServerProcess` gets unless its flags name one:
`duckdb` (default), `ducklake` (a `.ducklake` catalog file in the data dir) or
`ducklake-postgres` (a fresh database on 127.0.0.1:5432, Parquet in the data dir).
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import uuid
from pathlib import Path

PG_HOST = os.environ.get("SPANLAKE_TEST_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SPANLAKE_TEST_PGPORT", "5432"))
PG_USER = os.environ.get("SPANLAKE_TEST_PGUSER", "postgres")
STORE_ENV = "SPANLAKE_TEST_STORE"


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", "postgres", "-qAt", "-c", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


def create_database(prefix: str = "spanlake_test") -> str:
    """A new empty database; its name is unique so parallel sessions never share one."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _psql(f"CREATE DATABASE {name}")
    return name


def drop_database(name: str) -> None:
    try:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except (subprocess.SubprocessError, OSError):
        pass  # best effort: a leftover test database is harmless


def conninfo(dbname: str) -> str:
    return f"dbname={dbname} host={PG_HOST} port={PG_PORT} user={PG_USER}"


def postgres_lake_args(dbname: str, data_path: str) -> list[str]:
    return ["--store", f"ducklake:postgres:{conninfo(dbname)}", "--data-path", data_path]


def store_args_for(data_dir: Path, extra_args: list[str]) -> list[str]:
    """Flags that put a test server on the store SPANLAKE_TEST_STORE asks for."""
    kind = os.environ.get(STORE_ENV, "duckdb")
    if kind == "duckdb" or "--store" in extra_args:
        return []
    if kind == "ducklake":
        return ["--store", f"ducklake:{data_dir / 'catalog.ducklake'}"]
    if kind == "ducklake-postgres":
        dbname = create_database()
        _created_for_servers.append(dbname)
        return postgres_lake_args(dbname, str(data_dir / "lake") + "/")
    raise ValueError(f"{STORE_ENV}={kind!r}: expected duckdb, ducklake or ducklake-postgres")


_created_for_servers: list[str] = []


@atexit.register
def _drop_server_databases() -> None:
    """Servers of a SPANLAKE_TEST_STORE run are long stopped by now; their lakes can go."""
    for name in _created_for_servers:
        drop_database(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoS3:
    """moto's S3 server (`python -m moto.server`) on loopback, and the AWS variables for it.

    A child process rather than moto's thread server: its warnings and GIL stay out of pytest.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "spanlake-test",
            "AWS_SECRET_ACCESS_KEY": "spanlake-test-secret",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def create_bucket(self, name: str) -> None:
        import httpx

        httpx.put(f"{self.endpoint}/{name}", timeout=10).raise_for_status()

    def start(self, timeout: float = 30.0) -> "MotoS3":
        import sys
        import time

        import httpx

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}")
            try:
                httpx.get(self.endpoint, timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server not up after {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
