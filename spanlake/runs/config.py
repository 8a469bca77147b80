"""The `runs:` section of the config file: how dataset runs are executed in the background.

```yaml
runs:
  max_runs: 2               # runs this server executes at once (each has its own concurrency)
  lease_seconds: 30         # a dead replica's run is taken over after this
  trace_wait_seconds: 2     # after the last call, wait this long for the target's spans
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from spanlake.config_section import SettingsError, parse_section


class RunsConfigError(SettingsError):
    """The `runs:` section cannot be used; the message names the key."""


@dataclass(frozen=True)
class RunsConfig:
    max_runs: int = 2
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0  # how often idle servers look for runs, and runners for cancellations
    chunk_items: int = 200  # results read per query
    flush_results: int = 500  # results written per transaction, at most
    drain_seconds: float = 10.0  # on shutdown, how long calls in flight may finish
    trace_wait_seconds: float = 2.0  # SDKs export spans in batches; give them time before scoring

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and f.name != "trace_wait_seconds"):
                raise RunsConfigError(f"runs.{f.name}: must be > 0, got {value}")
        if self.lease_seconds < 3 * self.poll_seconds:
            raise RunsConfigError(f"runs.lease_seconds: must be at least 3 x poll_seconds, got {self.lease_seconds}")

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> "RunsConfig":
        config = parse_section(sections.get("runs"), cls, "runs", RunsConfigError)
        config.validate()
        return config
