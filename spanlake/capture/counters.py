"""Per-rule counters since start, shown by GET /api/rules and exported as metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from spanlake.store.commit_hooks import after_commit


@dataclass
class RuleCounter:
    evaluated: int = 0
    matched: int = 0
    sampled_out: int = 0
    rate_limited: int = 0
    captured: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def count(self, **deltas: int) -> None:
        """Add to the counters once the current write transaction commits (at once outside one):
        a lake transaction re-run after a conflict, or one rolled back, counts once or never."""
        def apply() -> None:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

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
