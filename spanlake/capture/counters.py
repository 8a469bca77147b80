"""Per-rule counters since start, shown by GET /api/rules and exported as metrics."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from spanlake.store.commit_hooks import after_commit

RECENT_FAILURES = 20  # per rule, kept in memory for GET /api/rules


@dataclass
class RuleCounter:
    evaluated: int = 0
    matched: int = 0
    sampled_out: int = 0
    rate_limited: int = 0
    captured: int = 0
    duplicates: int = 0
    # Scoring rules, in scorer calls (a match times the rule's scorers):
    queued: int = 0  # handed to the scoring engine
    already_scored: int = 0  # skipped (backfill, trace re-judged): scored or pending already
    scored: int = 0
    failed: int = 0
    recent_failures: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_FAILURES), repr=False)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}

    def failures(self) -> list[dict[str, Any]]:
        """The newest scorer failures first."""
        return list(reversed(self.recent_failures))

    def count(self, **deltas: int) -> None:
        """Add to the counters once the current write transaction commits (at once outside one):
        a lake transaction re-run after a conflict, or one rolled back, counts once or never."""
        def apply() -> None:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

        after_commit(apply)

    def failed_calls(self, failures: list[dict[str, Any]]) -> None:
        """Count scorer calls that failed for good, and keep them for GET /api/rules, once committed."""
        def apply() -> None:
            self.failed += len(failures)
            self.recent_failures.extend(failures)

        after_commit(apply)


class RuleCounters:
    """Counters keyed by rule name; they survive hot reloads of the rules file."""

    def __init__(self) -> None:
        self._by_rule: dict[str, RuleCounter] = {}

    def for_rule(self, name: str) -> RuleCounter:
        counter = self._by_rule.get(name)
        if counter is None:
            counter = self._by_rule[name] = RuleCounter()
        return counter
