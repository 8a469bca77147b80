"""`max_per_hour`: a per-rule budget for the current clock hour (per replica).

The budget is in units: a capture costs one; a match of a scoring rule costs one per scorer
(the LLM calls it will cause), so `max_per_hour: 500` with two scorers lets 250 matches through.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from spanlake.store.commit_hooks import after_rollback


class HourlyLimiter:
    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._hour = -1
        self._used: dict[str, int] = {}

    def take(self, rule: str, cap: int | None, wanted: int, cost: int = 1) -> int:
        """Grant up to `wanted` matches of `cost` units each for `rule`; returns how many fit this hour.

        Inside a write transaction the grant is given back if the transaction does not commit
        (rolled back, or re-run after a lake conflict), so only committed captures use budget.
        """
        if cap is None:
            return wanted
        hour = int(self._clock() // 3600)
        if hour != self._hour:
            self._hour = hour
            self._used.clear()
        used = self._used.get(rule, 0)
        granted = max(0, min(wanted, (cap - used) // cost))
        self._used[rule] = used + granted * cost
        after_rollback(lambda: self._give_back(hour, rule, granted * cost))
        return granted

    def _give_back(self, hour: int, rule: str, granted: int) -> None:
        if hour == self._hour:
            self._used[rule] = max(0, self._used.get(rule, 0) - granted)
