"""Config file sections are parsed when the settings load: a bad one stops `spanlake serve` at once."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from server_process import free_port

from spanlake.config_section import SettingsError, parse_section
from spanlake.settings import load_settings


def serve(tmp_path: Path, config: dict) -> subprocess.CompletedProcess[str]:
    """`spanlake serve --config` on free ports; a server that wrongly starts fails the test by timing out."""
    path = tmp_path / "spanlake.yaml"
    path.write_text(yaml.safe_dump(config))
    args = [sys.executable, "-m", "spanlake", "serve", "--data", str(tmp_path / "data"), "--config", str(path),
            "--grpc-port", str(free_port()), "--http-port", str(free_port())]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "config,message",
    [
        ({"scoring": {"max_batches": "two"}}, "scoring.max_batches: expected a whole number, got 'two'"),
        ({"scoring": {"max_batchez": 2}}, "scoring.max_batchez: unknown key; expected one of"),
        ({"scoring": {"lease_seconds": 0}}, "scoring.lease_seconds: must be > 0"),
        ({"runs": {"poll_seconds": True}}, "runs.poll_seconds: expected a number, got True"),
        ({"pricing": {"gpt-4o": {"input": 1.0}}}, "pricing.gpt-4o.output: required"),
        ({"scorers": [{"name": "x", "type": "nope"}]}, "scorers[0].type: unknown scorer type 'nope'"),
        ({"compaction": {"interval_seconds": "often"}}, "compaction.interval_seconds: expected a number, got 'often'"),
    ],
)
def test_a_bad_section_stops_serve_before_the_store_opens(tmp_path, config, message):
    result = serve(tmp_path, config)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("spanlake: error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "spanlake.duckdb").exists(), "the store was opened before the config was checked"


def test_an_unknown_top_level_key_is_refused(tmp_path):
    result = serve(tmp_path, {"scorring": {"max_batches": 2}})
    assert result.returncode == 1, result.stderr
    assert "spanlake.yaml: scorring: unknown top-level key" in result.stderr, result.stderr
    assert "scoring" in result.stderr.split("scorring:", 1)[1], "the message lists the sections that exist"


def test_sections_are_typed_objects_after_loading(tmp_path):
    path = tmp_path / "spanlake.yaml"
    path.write_text(yaml.safe_dump({
        "retention_days": 7,
        "scoring": {"poll_seconds": 2},
        "runs": {"max_runs": 4},
        "pricing": {"m": {"input": 1, "output": 2.5}},
        "outbound": {"allow": ["https://agents.example.com/*"]},
        "retention": {"default_days": 30, "services": {"checkout": 3}},
    }))
    sections = load_settings({"config_file": str(path)}, env={}).sections
    assert sections.scoring.engine.poll_seconds == 2.0 and isinstance(sections.scoring.engine.poll_seconds, float)
    assert sections.runs.max_runs == 4
    assert sections.pricing.price("m").cost(1_000_000, 1_000_000) == 3.5
    assert sections.outbound.allow_text == "https://agents.example.com/*"
    # --retention-days (here from the file's top level) wins over retention.default_days
    assert sections.maintenance.retention.default_days == 7
    assert dict(sections.maintenance.retention.services) == {"checkout": 3}


@dataclass(frozen=True)
class Inner:
    days: int


@dataclass(frozen=True)
class Example:
    name: str = "x"
    ratio: float = 1.0
    count: int | None = None
    on: bool = False
    tags: tuple[str, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)
    inner: Inner | None = None


@pytest.mark.parametrize(
    "raw,message",
    [
        ([1], "example: expected a mapping of keys, got a list"),
        ({"nmae": "y"}, "example.nmae: unknown key; expected one of count, inner, limits, name, on, ratio, tags"),
        ({"name": 3}, "example.name: expected a string, got 3"),
        ({"ratio": "1"}, "example.ratio: expected a number, got '1'"),
        ({"count": 2.5}, "example.count: expected a whole number, got 2.5"),
        ({"count": False}, "example.count: expected a whole number, got False"),
        ({"on": 1}, "example.on: expected true or false, got 1"),
        ({"tags": "a"}, "example.tags: expected a list, got 'a'"),
        ({"tags": ["a", 2]}, "example.tags[1]: expected a string, got 2"),
        ({"limits": {"a": "b"}}, "example.limits.a: expected a whole number, got 'b'"),
        ({"inner": {}}, "example.inner.days: required"),
    ],
)
def test_parse_section_names_the_key_it_refuses(raw, message):
    with pytest.raises(SettingsError) as info:
        parse_section(raw, Example, "example")
    assert str(info.value) == message


def test_parse_section_fills_defaults_and_converts_whole_numbers_to_floats():
    assert parse_section(None, Example, "example") == Example()
    parsed = parse_section({"ratio": 2, "count": None, "tags": ["a"], "inner": {"days": 3}}, Example, "example")
    assert parsed == Example(ratio=2.0, tags=("a",), inner=Inner(3))
    assert isinstance(parsed.ratio, float)
