"""Opening the database: the embedded DuckDB file, or a DuckLake catalog (PostgreSQL or file).

Extensions for DuckLake come from PyPI packages installed by the `lake` extra; we load them from
their files and never let DuckDB download anything (machines may have no internet).
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from spanlake.store import chat_functions, vacuum
from spanlake.store.conflicts import MAX_ATTEMPTS, backoff_seconds, is_conflict

LAKE_INSTALL_HINT = "pip install 'spanlake[lake]'"
LAKE_CATALOG = "lake"


class StoreConfigError(ValueError):
    """The store URL or data path cannot be used; the message says what to change."""


@dataclass(frozen=True)
class StoreConfig:
    """Where spans live. `url` is `duckdb` (embedded file under data_dir) or `ducklake:<catalog>`."""

    url: str = "duckdb"
    data_dir: Path = Path("./spanlake-data")
    data_path: str | None = None  # DuckLake Parquet location: a directory or s3://bucket/prefix/
    memory_limit: str | None = None
    threads: int | None = None  # DuckDB worker threads; None: default_threads()
    read_only: bool = False  # tools reading a store (export) never take the writer's lock

    @property
    def is_lake(self) -> bool:
        return self.url.startswith("ducklake:")

    @property
    def catalog(self) -> str:
        return LAKE_CATALOG if self.is_lake else "main"

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "spanlake.duckdb"

    def validate(self) -> None:
        if self.url == "duckdb" or self.url.startswith("duckdb:"):
            return
        if self.is_lake:
            target = self.url[len("ducklake:") :]
            if not target:
                raise StoreConfigError(
                    "--store ducklake: needs a catalog, e.g. 'ducklake:postgres:dbname=lake host=db' "
                    "or 'ducklake:./spans.ducklake'"
                )
            return
        raise StoreConfigError(
            f"--store {self.url!r}: expected 'duckdb', 'duckdb:<file>', 'ducklake:postgres:<conninfo>' "
            "or 'ducklake:<file>.ducklake'"
        )


def _extension_file(package: str, name: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise StoreConfigError(
            f"the DuckDB extension '{name}' is not installed; run: {LAKE_INSTALL_HINT}"
        ) from exc
    root = Path(module.__file__).parent / "extensions"
    files = sorted(root.rglob(f"{name}.duckdb_extension"))
    if not files:
        raise StoreConfigError(f"package {package} has no {name}.duckdb_extension; reinstall: {LAKE_INSTALL_HINT}")
    return files[-1]


def load_extension(conn: duckdb.DuckDBPyConnection, package: str, name: str) -> None:
    """Load a signed extension from its PyPI package file, never from the network."""
    conn.execute(f"LOAD '{_extension_file(package, name).as_posix()}'")


def _configure_s3(conn: duckdb.DuckDBPyConnection) -> None:
    """Create an S3 secret from the standard AWS environment variables."""
    load_extension(conn, "duckdb_extension_httpfs", "httpfs")
    params: dict[str, str] = {"TYPE": "s3"}
    if key := os.environ.get("AWS_ACCESS_KEY_ID"):
        params["KEY_ID"] = key
    if secret := os.environ.get("AWS_SECRET_ACCESS_KEY"):
        params["SECRET"] = secret
    if token := os.environ.get("AWS_SESSION_TOKEN"):
        params["SESSION_TOKEN"] = token
    params["REGION"] = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    if endpoint := os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        params["ENDPOINT"] = parsed.netloc
        params["USE_SSL"] = "true" if parsed.scheme == "https" else "false"
        params["URL_STYLE"] = "path"
    # CREATE SECRET takes no bound parameters; values are quoted as SQL string literals.
    body = ", ".join(f"{k} {_sql_literal(v) if k != 'TYPE' else v}" for k, v in params.items())
    conn.execute(f"CREATE OR REPLACE SECRET spanlake_s3 ({body})")


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _open_lake(config: StoreConfig) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(config=_base_settings(config))
    load_extension(conn, "duckdb_extension_ducklake", "ducklake")
    # Two replicas committing at once race for the next snapshot id; the loser re-bases its
    # commit after `ducklake_retry_wait_ms` (default 100 ms, x1.5 per try), which is longer than
    # a whole group commit here. Short waits and more tries keep ingest flowing (bench/lake.py).
    conn.execute("SET ducklake_retry_wait_ms = 5")
    conn.execute("SET ducklake_retry_backoff = 1.5")
    conn.execute("SET ducklake_max_retry_count = 30")
    target = config.url[len("ducklake:") :]
    data_path = config.data_path
    if target.startswith("postgres:"):
        load_extension(conn, "duckdb_extension_postgres_scanner", "postgres_scanner")
        if not data_path:
            raise StoreConfigError("--store ducklake:postgres:... needs --data-path (a directory or s3://bucket/prefix/)")
    else:
        target = str(Path(target).expanduser())
        data_path = data_path or (target + ".files/")
    if data_path and data_path.startswith("s3://"):
        _configure_s3(conn)
    elif data_path and not config.read_only:
        Path(data_path).mkdir(parents=True, exist_ok=True)
    options = ", ".join(
        ([f"DATA_PATH {_sql_literal(data_path)}"] if data_path else []) + (["READ_ONLY"] if config.read_only else [])
    )
    attach = f"ATTACH {_sql_literal('ducklake:' + target)} AS {LAKE_CATALOG} ({options})"
    for attempt in range(MAX_ATTEMPTS):
        try:
            conn.execute(attach)
            break
        except duckdb.Error as exc:
            # Replicas attaching a brand-new catalog at once race to create DuckLake's own tables.
            if not is_conflict(exc) or attempt == MAX_ATTEMPTS - 1:
                raise StoreConfigError(f"cannot attach {target!r}: {_first_line(exc)}") from exc
            time.sleep(backoff_seconds(attempt))
    conn.execute(f"USE {LAKE_CATALOG}")
    return conn


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# DuckDB checkpoints automatically inside the COMMIT that pushes the WAL past this size, so the
# default (16 MB) made every few group commits pay a checkpoint: 34% of server CPU under load
# (py-spy, bench/ingest.py). Larger checkpoints cost less per span; the price is a longer WAL
# replay after a crash. The maintenance component also checkpoints on a timer (spanlake/maintenance.py).
EMBEDDED_CHECKPOINT_THRESHOLD = "256MB"


def _base_settings(config: StoreConfig) -> dict[str, str]:
    settings = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    if config.memory_limit:
        settings["memory_limit"] = config.memory_limit
    settings["threads"] = str(config.threads or default_threads())
    return settings


def default_threads() -> int:
    """One fewer DuckDB thread than cores: decoding and the event loop hold the GIL on a core of
    their own, and a DuckDB worker contending for it cost more CPU per span than it saved
    (bench/ingest.py on 2 cores: 89 us/span with 2 threads, 64 us/span with 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def embedded_file(config: StoreConfig) -> Path:
    """The embedded store's database file (`duckdb`: under the data dir; `duckdb:<file>`)."""
    if config.url.startswith("duckdb:"):
        return Path(config.url[len("duckdb:") :]).expanduser()
    return config.duckdb_path


def embedded_wal_file(config: StoreConfig) -> Path:
    """Where DuckDB keeps the embedded store's write-ahead log: beside the file, `.wal` added."""
    database = embedded_file(config)
    return database.with_name(database.name + ".wal")


def open_connection(config: StoreConfig) -> duckdb.DuckDBPyConnection:
    conn = _open(config)
    chat_functions.register(conn)  # cursors made from it share them
    return conn


def _open(config: StoreConfig) -> duckdb.DuckDBPyConnection:
    config.validate()
    if config.is_lake:
        return _open_lake(config)
    path = embedded_file(config)
    if config.read_only:
        if not path.exists():
            raise StoreConfigError(f"no store at {path}: check --data or --store")
        return duckdb.connect(str(path), read_only=True, config=_base_settings(config))
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        **_base_settings(config),
        "checkpoint_threshold": EMBEDDED_CHECKPOINT_THRESHOLD,
        # Vacuum only after deletes (store/vacuum.py): under ingest it rewrites spans for nothing.
        "max_vacuum_tasks": str(vacuum.OFF),
    }
    try:
        return duckdb.connect(str(path), config=settings)
    except duckdb.IOException as exc:
        raise StoreConfigError(f"cannot open {path}: {exc}") from exc
