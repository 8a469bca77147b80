"""`max_per_hour`: a per-rule budget of captures in the current clock hour (per replica)."""

from __future__ import annotations

import time
from collections.abc import Callable

from spanlake.store.commit_hooks import after_rollback


class HourlyLimiter:
    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._hour = -1
        self._used: dict[str, int] = {}

    def take(self, rule: str, cap: int | None, wanted: int) -> int:
        """Grant up to `wanted` captures for `rule`; returns how many fit this hour.

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
        granted = max(0, min(wanted, cap - used))
        self._used[rule] = used + granted
        after_rollback(lambda: self._give_back(hour, rule, granted))
        return granted

    def _give_back(self, hour: int, rule: str, granted: int) -> None:
        if hour == self._hour:
            self._used[rule] = max(0, self._used.get(rule, 0) - granted)
