"""The capture rules component: holds the rules, hot-reloads the file, judges quiet traces.

Reload: the file is polled (mtime, size, content digest); a valid new file takes effect for the
next commit; an invalid one is refused, logged and shown on /api/rules while the old rules stay.
Trace scope: every tick, traces quiet for `trace_quiet_seconds` are judged in one write
transaction that also forgets them, so a restart neither loses nor repeats a judgement.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any

import duckdb

from spanlake.capture.apply import apply_rule
from spanlake.capture.counters import RuleCounters
from spanlake.capture.rates import HourlyLimiter
from spanlake.capture.rules import RuleSet, RulesError, ScorerCatalog, load_rules
from spanlake.capture.stage import CaptureStage
from spanlake.store import Store, locks, rule_relations
from spanlake.store.fence import WriteFence
from spanlake.clock import utc_now

log = logging.getLogger(__name__)

TRACES_PER_JUDGEMENT = 2000


@dataclass
class ReloadState:
    loaded_at: dt.datetime | None = None
    error: dict[str, Any] | None = None
    file_key: tuple[float, int] | None = None


class CaptureRules:
    """The rules in force. `stage` is the loader's commit stage for span-scope rules; the wiring
    hands it to the loader (server.py), the component itself never reaches into the loader."""

    def __init__(
        self,
        store: Store,
        path: str | None,
        ruleset: RuleSet,
        *,
        quiet_seconds: float,
        scorers: ScorerCatalog | None,
        fence: WriteFence,
        counters: RuleCounters,
        reload_seconds: float = 1.0,
    ):
        self.store = store
        self.path = path
        self.scorers = scorers  # the server's scorers: `score:` names are checked on reload
        self.ruleset = ruleset
        self.quiet_seconds = quiet_seconds
        # Judging deletes from capture_pending, which other replicas insert into: the write
        # fence keeps it from starving behind them.
        self.fence = fence
        self.counters = counters  # shared with the scoring rules' worker
        self.reload_seconds = reload_seconds
        self.limiter = HourlyLimiter()
        self.stage = CaptureStage(lambda: self.ruleset, self.counters, self.limiter)
        self.state = ReloadState(loaded_at=utc_now(), file_key=_file_key(path))
        self._tasks: list[asyncio.Task] = []

    # Hot reload -------------------------------------------------------------------------------

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed; returns True when new rules took effect."""
        if not self.path:
            return False
        key = _file_key(self.path)
        if key == self.state.file_key:
            return False
        self.state.file_key = key
        try:
            ruleset = load_rules(self.path, self.scorers)
        except RulesError as exc:
            if self.state.error is None or self.state.error["problems"] != exc.problems:
                log.error("rules file %s refused; keeping the previous rules:\n%s", self.path, "\n".join(exc.problems))
            self.state.error = {"message": f"{exc.source}: {len(exc.problems)} error(s)", "problems": exc.problems, "at": utc_now()}
            return False
        if ruleset.digest == self.ruleset.digest:
            self.state.error = None
            return False
        self.ruleset = ruleset
        self.state.loaded_at = utc_now()
        self.state.error = None
        log.info("rules reloaded from %s: %d rule(s)", self.path, len(ruleset.rules))
        return True

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.reload_if_changed)
            except Exception:  # a watcher that dies silently would freeze the rules forever
                log.exception("checking the rules file failed")

    # Trace scope ------------------------------------------------------------------------------

    def judge(self, cur: duckdb.DuckDBPyConnection, now: dt.datetime) -> int:
        """Judge quiet traces against the trace-scope rules (captures, and scoring rules' queue
        rows) in one write transaction; returns how many traces were judged."""
        quiet_before = now - dt.timedelta(seconds=self.quiet_seconds)
        with rule_relations.quiet_traces(cur, quiet_before, TRACES_PER_JUDGEMENT) as judged:
            if not judged:
                return 0
            rules = self.ruleset.active("trace")
            if rules:
                spans = rule_relations.quiet_trace_spans(cur)
                for rule in rules:
                    apply_rule(cur, rule, spans, self.counters.for_rule(rule.name), self.limiter)
            rule_relations.forget_quiet_traces(cur)
        return judged

    async def _judge_loop(self) -> None:
        interval = max(0.2, min(self.quiet_seconds / 4, 5.0))
        # Replicas on one lake share capture_pending: one judges at a time, the holder of this
        # lease, and another takes over once a dead holder's lease has passed.
        owner, lease_seconds = locks.new_owner(), max(15.0, 6 * interval)
        while True:
            await asyncio.sleep(interval)
            try:
                if self.store.is_lake and not await self.store.write(
                    locks.try_lease, locks.CAPTURE_JUDGE, owner, lease_seconds
                ):
                    continue
                while await self.fence.write(self.judge, utc_now()) == TRACES_PER_JUDGEMENT:
                    pass  # a full batch may leave more quiet traces: go again at once
            except duckdb.Error as exc:
                log.error("judging quiet traces failed (will retry): %s", exc)

    # Lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.path:
            self._tasks.append(loop.create_task(self._watch(self.reload_seconds), name="spanlake-rules-watch"))
        self._tasks.append(loop.create_task(self._judge_loop(), name="spanlake-trace-judge"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


def _file_key(path: str | None) -> tuple[float, int] | None:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)

