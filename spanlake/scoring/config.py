"""Scoring configuration: the `scorers:` list and the `scoring:` engine knobs of the config file.

```yaml
scorers:
  - name: helpfulness          # what scores are called; unique
    type: llm_judge            # a registered type, or python with params.callable: module:callable
    concurrency: 16            # calls in flight for this scorer (default: the type's)
    max_attempts: 4            # tries per trace when errors are transient (timeouts, 429, 5xx)
    timeout_s: 60              # per try, for async scorers
    params: {model: gpt-4o-mini, base_url: https://api.openai.com/v1, api_key_env: OPENAI_API_KEY}
scoring:
  max_batches: 2               # batches this server runs at once
  lease_seconds: 30            # a dead replica's batch is taken over after this
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from spanlake.scoring.base import ScorerConfigError
from spanlake.config_section import parse_section

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\Z")
MODULE_CALLABLE_RE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\Z")


@dataclass(frozen=True)
class ScorerConfig:
    """One entry of `scorers:`."""

    name: str
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    concurrency: int | None = None  # None: the type's default
    max_attempts: int = 4
    timeout_s: float = 60.0

    def validate(self, where: str) -> None:
        if not NAME_RE.match(self.name):
            raise ScorerConfigError(f"{where}.name: {self.name!r} must be 1-128 letters, digits, '_', '-' or '.'")
        if self.concurrency is not None and not 1 <= self.concurrency <= 1024:
            raise ScorerConfigError(f"{where}.concurrency: must be 1..1024, got {self.concurrency}")
        if not 1 <= self.max_attempts <= 20:
            raise ScorerConfigError(f"{where}.max_attempts: must be 1..20, got {self.max_attempts}")
        if not 0 < self.timeout_s <= 3600:
            raise ScorerConfigError(f"{where}.timeout_s: must be in (0, 3600], got {self.timeout_s}")


@dataclass(frozen=True)
class EngineConfig:
    """The `scoring:` section: how batches are run."""

    max_batches: int = 2
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    chunk_traces: int = 500  # traces loaded per spans query
    flush_scores: int = 1000  # scores written per transaction, at most
    linger_seconds: float = 0.2  # longest a finished score waits for others to share its transaction
    drain_seconds: float = 10.0  # on shutdown, how long scorers in flight may finish
    max_rule_jobs: int = 2  # scoring rules' jobs this server runs at once (beside max_batches)
    # How often scoring rules' queued matches become jobs. Each dispatch costs about four write
    # transactions per (rule, scorer) (job, claim, outcomes, finish) on the writer ingest also needs.
    rule_dispatch_seconds: float = 5.0
    rule_job_targets: int = 10_000  # queued matches per dispatch, at most (whole commits)

    def validate(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ScorerConfigError(f"scoring.{f.name}: must be > 0, got {getattr(self, f.name)}")
        if self.lease_seconds < 3 * self.poll_seconds:
            raise ScorerConfigError(f"scoring.lease_seconds: must be at least 3 x poll_seconds, got {self.lease_seconds}")


@dataclass(frozen=True)
class ScoringConfig:
    scorers: tuple[ScorerConfig, ...] = ()
    engine: EngineConfig = EngineConfig()

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> "ScoringConfig":
        """Build from the config file's `scorers:` list and `scoring:` section."""
        raw_list = sections.get("scorers") or []
        if not isinstance(raw_list, list):
            raise ScorerConfigError(f"scorers: expected a list of scorer declarations, got {type(raw_list).__name__}")
        scorers = tuple(parse_section(raw, ScorerConfig, f"scorers[{i}]", ScorerConfigError) for i, raw in enumerate(raw_list))
        seen: set[str] = set()
        for i, sc in enumerate(scorers):
            if sc.name in seen:
                raise ScorerConfigError(f"scorers[{i}].name: {sc.name!r} is declared twice")
            seen.add(sc.name)
        engine = parse_section(sections.get("scoring"), EngineConfig, "scoring", ScorerConfigError)
        config = cls(scorers, engine)
        config.validate()
        return config

    def validate(self) -> None:
        for i, sc in enumerate(self.scorers):
            sc.validate(f"scorers[{i}]")
        self.engine.validate()

