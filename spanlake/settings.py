"""One settings object: CLI flags > env SPANLAKE_* > YAML config file > defaults.

Every setting is declared once in SETTINGS with its default and help; the CLI flags, the
environment names, `--help-settings` and the docs test are all derived from that list.
The config file's other top-level keys are sections owned by packages (`scoring:`, `runs:` ...):
each is parsed into its package's frozen dataclass here, when the settings load, so a bad
section stops the command before anything opens; a top-level key that is neither is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from spanlake.config_section import SettingsError
from spanlake.maintenance import MaintenanceConfig
from spanlake.outbound import OutboundPolicy
from spanlake.runs.config import RunsConfig
from spanlake.runs.pricing import Pricing
from spanlake.scoring.config import ScoringConfig


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    flag: str | None = None  # defaults to --name-with-dashes
    env_var: str | None = None  # defaults to SPANLAKE_<NAME>

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return self.env_var or "SPANLAKE_" + self.name.upper()


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _keys(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address both listeners bind to. Use 0.0.0.0 to accept remote clients."),
    Setting("grpc_port", 4317, "OTLP/gRPC port.", int),
    Setting("http_port", 4318, "OTLP/HTTP and HTTP API port.", int),
    Setting("data", "./spanlake-data", "Data directory of the embedded store (spanlake.duckdb lives here)."),
    Setting(
        "store",
        "duckdb",
        "Store URL: 'duckdb' (embedded file), 'ducklake:postgres:<conninfo>' or 'ducklake:<file>.ducklake'.",
    ),
    Setting("data_path", None, "DuckLake Parquet location: a directory or s3://bucket/prefix/."),
    Setting("rules", None, "Capture rules file (YAML); hot-reloaded when it changes."),
    Setting(
        "api_keys",
        (),
        "API keys with every scope; when set, OTLP and /api/* need 'authorization: Bearer <key>'. "
        "Env: comma-separated. Keys with fewer scopes: the api_keys: list of the config file.",
        _keys,
        flag="--api-key",
        env_var="SPANLAKE_API_KEY",
    ),
    Setting("metrics_require_key", False, "Require an API key on /metrics too.", _bool),
    Setting("max_message_bytes", 64 * 1024 * 1024, "Largest OTLP request accepted, after decompression.", int),
    Setting(
        "max_inflight_bytes",
        256 * 1024 * 1024,
        "Budget for the bytes of all requests being decoded at once; over it, clients are told to retry.",
        int,
    ),
    Setting(
        "log_max_bytes",
        2 * 1024**3,
        "Ingest log bytes not loaded into the store yet; over it, clients are told to retry.",
        int,
    ),
    Setting("load_max_spans", 25_000, "Most spans the loader moves from the ingest log into the store per transaction.", int),
    Setting("decode_workers", 0, "Processes that decode OTLP requests; 0 decodes on a thread of the server.", int),
    Setting("trace_quiet_seconds", 30.0, "A trace-scope capture rule judges a trace after this many quiet seconds.", float),
    Setting(
        "retention_days",
        None,
        "Delete traces that ended more than this many days ago (per-service days: the retention: "
        "section of the config file); empty keeps everything.",
        _optional_int,
    ),
    # DuckDB's own default is 80% of the machine's memory: a trace backend beside other services
    # should not claim that. Under 2x overload this bound is most of what moves peak RSS
    # (bench/RESULTS.md); queries past it spill to disk. Raise it for heavy query use.
    Setting("memory_limit", "512MB", "DuckDB memory limit, e.g. '4GB'; empty lets DuckDB choose (80% of RAM)."),
    Setting(
        "duckdb_threads",
        None,
        "DuckDB worker threads; empty means one fewer than the CPU cores (at least 1), leaving a "
        "core to the Python decoder and event loop.",
        _optional_int,
    ),
    Setting("log_level", "info", "Log level: debug, info, warning or error."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _default(name: str) -> Any:
    return _BY_NAME[name].default


# The top-level keys of the config file that are sections, not settings (`api_keys:` is a
# setting whose mapping entries are scoped keys, read by spanlake/auth.py).
SECTION_KEYS = ("scorers", "scoring", "runs", "pricing", "outbound", "retention", "compaction")


@dataclass(frozen=True)
class Sections:
    """The config file's sections, each parsed by its package when the settings load."""

    scoring: ScoringConfig = field(default_factory=ScoringConfig)  # `scorers:` and `scoring:`
    runs: RunsConfig = field(default_factory=RunsConfig)
    pricing: Pricing = field(default_factory=Pricing)
    outbound: OutboundPolicy = field(default_factory=lambda: OutboundPolicy.from_sections({}))
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)  # `retention:`, `compaction:`

    @classmethod
    def parse(cls, raw: Mapping[str, Any], retention_days: int | None) -> "Sections":
        return cls(
            scoring=ScoringConfig.from_sections(raw),
            runs=RunsConfig.from_sections(raw),
            pricing=Pricing.from_sections(raw),
            outbound=OutboundPolicy.from_sections(raw),
            maintenance=MaintenanceConfig.from_settings(retention_days, raw),
        )


@dataclass(frozen=True)
class Settings:
    """The merged settings; each default is the one SETTINGS declares (with its help)."""

    host: str = _default("host")
    grpc_port: int = _default("grpc_port")
    http_port: int = _default("http_port")
    data: str = _default("data")
    store: str = _default("store")
    data_path: str | None = _default("data_path")
    rules: str | None = _default("rules")
    api_keys: tuple[str, ...] = _default("api_keys")
    # The config file's `api_keys:` entries that are mappings (name, key_env | key_sha256 | key,
    # scopes); spanlake/auth.py reads them. Plain strings stay in api_keys, with every scope.
    scoped_keys: tuple[Mapping[str, Any], ...] = ()
    metrics_require_key: bool = _default("metrics_require_key")
    max_message_bytes: int = _default("max_message_bytes")
    max_inflight_bytes: int = _default("max_inflight_bytes")
    log_max_bytes: int = _default("log_max_bytes")
    load_max_spans: int = _default("load_max_spans")
    decode_workers: int = _default("decode_workers")
    trace_quiet_seconds: float = _default("trace_quiet_seconds")
    retention_days: int | None = _default("retention_days")
    memory_limit: str | None = _default("memory_limit")
    duckdb_threads: int | None = _default("duckdb_threads")
    log_level: str = _default("log_level")
    config_file: str | None = None
    sections: Sections = field(default_factory=Sections)

    def validate(self) -> None:
        for port_name in ("grpc_port", "http_port"):
            port = getattr(self, port_name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{port_name}: {port} is not a port number (0-65535)")
        if self.max_message_bytes < 1024:
            raise SettingsError(f"max_message_bytes: {self.max_message_bytes} is below the 1024-byte minimum")
        if self.log_max_bytes < 1024:
            raise SettingsError(f"log_max_bytes: must be >= 1024, got {self.log_max_bytes}")
        if self.load_max_spans < 1:
            raise SettingsError(f"load_max_spans: must be >= 1, got {self.load_max_spans}")
        if self.duckdb_threads is not None and self.duckdb_threads < 1:
            raise SettingsError(f"duckdb_threads: must be >= 1, got {self.duckdb_threads}")
        if self.retention_days is not None and self.retention_days < 1:
            raise SettingsError(f"retention_days: must be >= 1, got {self.retention_days}")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise SettingsError(f"log_level: {self.log_level!r} is not one of debug, info, warning, error")

    @property
    def data_dir(self) -> Path:
        return Path(self.data).expanduser()


def _coerce(setting: Setting, value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return setting.parse(value)
        if setting.name == "api_keys":
            if isinstance(value, (list, tuple)):
                return tuple(str(v) for v in value)
            raise ValueError("expected a list of keys")
        if isinstance(setting.default, bool) and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return setting.parse(str(value)) if setting.parse is not str else str(value)
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def load_config_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SettingsError(f"--config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"--config {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"--config {path}: expected a mapping of settings at the top level")
    return data


def load_settings(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Merge the four sources; `cli` holds only the flags the user actually gave."""
    cli = dict(cli or {})
    env = os.environ if env is None else env
    config_file = cli.pop("config_file", None) or config_file or env.get("SPANLAKE_CONFIG")
    values: dict[str, Any] = {}
    raw_sections: dict[str, Any] = {}
    if config_file:
        for key, value in load_config_file(config_file).items():
            setting = _BY_NAME.get(key)
            if key == "api_keys" and isinstance(value, list):
                scoped = tuple(v for v in value if isinstance(v, Mapping))
                if scoped:
                    values["scoped_keys"] = scoped
                    value = [v for v in value if not isinstance(v, Mapping)]
            if setting is not None:
                values[key] = _coerce(setting, value, f"{config_file}: {key}")
            elif key in SECTION_KEYS:
                raw_sections[key] = value
            else:
                raise SettingsError(
                    f"{config_file}: {key}: unknown top-level key; expected a setting (spanlake --help-settings) "
                    f"or a section: {', '.join(SECTION_KEYS)}"
                )
    for setting in SETTINGS:
        if setting.env in env:
            values[setting.name] = _coerce(setting, env[setting.env], setting.env)
        if cli.get(setting.name) is not None:
            raw = cli[setting.name]
            values[setting.name] = raw if not isinstance(raw, str) else _coerce(setting, raw, setting.cli_flag)
    settings = replace(Settings(), **values, config_file=config_file)
    settings.validate()
    try:
        sections = Sections.parse(raw_sections, settings.retention_days)
    except ValueError as exc:  # SettingsError, or a section's validate()
        raise SettingsError(f"{config_file or 'config'}: {exc}") from None
    return replace(settings, sections=sections)


def settings_help() -> str:
    """The table `--help-settings` prints and the docs are checked against."""
    lines = []
    for s in SETTINGS:
        lines.append(f"{s.cli_flag:<24} {s.env:<30} default: {s.default!r}\n    {s.help}")
    return "\n".join(lines)

