"""The scorer interface: what a scorer receives, what it returns, and how it says it failed.

A scorer is any object with `score(ctx) -> ScoreResult` (plain or `async def`). A scorer *type*
(`ScorerType`) builds scorers from validated parameters; plugins contribute types (see
registry.py). Failures follow the Collector's permanent/retryable split: raise `TransientError`
for what may succeed later (timeouts, 429, 5xx) and `ScoringError` for what will not.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from spanlake.config_section import SettingsError

DATA_TYPES = ("numeric", "boolean", "categorical")


class ScorerConfigError(SettingsError):
    """A scorer declaration cannot be used; the message names the key as written in the config."""


class ScoringError(Exception):
    """Scoring this trace failed for good (bad answer, missing field): the item fails with this reason."""


class TransientError(ScoringError):
    """May succeed if tried again later; `retry_after` (seconds) is the server's hint, if any."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ScoreResult:
    """A scorer's answer. `value` number or bool; `label` alone makes a categorical score."""

    value: float | bool | None = None
    label: str | None = None
    explanation: str | None = None
    metadata: Mapping[str, Any] | None = None
    data_type: str | None = None  # inferred from value/label when not given

    def normalized(self) -> tuple[float | None, str]:
        """(stored value, data_type); refuses results a score cannot hold."""
        value, data_type = self.value, self.data_type
        if isinstance(value, bool):
            return (1.0 if value else 0.0), data_type or "boolean"
        if value is None:
            if self.label is None:
                raise ScoringError("scorer returned neither a value nor a label")
            return None, data_type or "categorical"
        if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise ScoringError(f"scorer returned value {value!r}; expected a finite number or a boolean")
        if data_type is not None and data_type not in DATA_TYPES:
            raise ScoringError(f"data_type {data_type!r} is not one of {', '.join(DATA_TYPES)}")
        return float(value), data_type or "numeric"


@dataclass(frozen=True)
class ScoreContext:
    """One unit of work: a whole trace, or one span of it (`target`).

    `expected_output` / `actual_output` are set when comparing a dataset run's output with the
    item's expectation; for plain traces `actual_output` is the scored span's output.
    """

    trace_id: str
    spans: list[dict[str, Any]]
    target: dict[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    expected_output: Any = None
    actual_output: Any = None

    @property
    def root(self) -> dict[str, Any]:
        return root_span(self.spans)

    @property
    def span(self) -> dict[str, Any]:
        """The span being scored: the target, else the root."""
        return self.target if self.target is not None else self.root

    @property
    def input(self) -> Any:
        return self.target.get("input") if self.target is not None else trace_field(self.spans, "input")

    @property
    def output(self) -> Any:
        if self.actual_output is not None:
            return self.actual_output
        return self.target.get("output") if self.target is not None else trace_field(self.spans, "output")


def root_span(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """The span without a parent in the trace (spans come parents first, so the first one)."""
    if not spans:
        raise ScoringError("trace has no spans")
    return spans[0]


def trace_field(spans: list[dict[str, Any]], name: str) -> Any:
    """A trace's input or output: the root's, else the first (input) / last-ending (output) span's."""
    root = root_span(spans)
    if root.get(name) not in (None, ""):
        return root[name]
    candidates = [s for s in spans if s.get(name) not in (None, "")]
    if not candidates:
        return None
    if name == "output":
        return max(candidates, key=lambda s: s.get("end_time_unix_nano") or "")[name]
    return candidates[0][name]


def as_text(value: Any) -> str:
    """Text a scorer can match against: strings as is, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@runtime_checkable
class Scorer(Protocol):
    """Anything with a `score` method; `aclose` (optional) releases connections on shutdown."""

    def score(self, ctx: ScoreContext) -> ScoreResult | Awaitable[ScoreResult]: ...


def is_async_scorer(scorer: Scorer) -> bool:
    return inspect.iscoroutinefunction(scorer.score)


@dataclass(frozen=True)
class ScorerType:
    """A kind of scorer a plugin offers; `create(params)` returns a ready Scorer.

    `parameters` is a JSON Schema (object) for `params`; it is checked before `create` runs and
    shown by `GET /api/scorers`. A type whose schema requires nothing is also a scorer of the
    same name that works without configuration.
    """

    name: str
    description: str
    create: Callable[[Mapping[str, Any]], Scorer]
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    default_concurrency: int = 1
    secret_params: tuple[str, ...] = ()  # hidden from listings
    # Compares with a dataset item's expected output: only a dataset run can give it one, so a
    # batch of traces with this scorer is refused up front instead of failing trace by trace.
    needs_expected_output: bool = False

    @property
    def scopes(self) -> tuple[str, ...]:
        """What a scoring rule may point it at: a whole trace, a span; nothing for a scorer that
        needs an expected output, which a rule's match lacks (dataset runs only)."""
        return () if self.needs_expected_output else ("trace", "span")

    @property
    def needs_params(self) -> bool:
        return any(self.parameters.get(key) for key in ("required", "anyOf", "oneOf"))


class FunctionScorer:
    """Adapts a plain function `fn(ctx)` (sync or async) returning a ScoreResult, number, bool or dict."""

    def __init__(self, fn: Callable[[ScoreContext], Any]):
        self._fn = fn
        if inspect.iscoroutinefunction(fn):
            self.score = self._score_async  # type: ignore[method-assign]

    def score(self, ctx: ScoreContext) -> ScoreResult:
        return coerce_result(self._fn(ctx))

    async def _score_async(self, ctx: ScoreContext) -> ScoreResult:
        return coerce_result(await self._fn(ctx))


def coerce_result(raw: Any) -> ScoreResult:
    """Accept the shapes a quick user function tends to return."""
    if isinstance(raw, ScoreResult):
        return raw
    if isinstance(raw, (bool, int, float)):
        return ScoreResult(value=raw)
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"value", "label", "explanation", "metadata", "data_type"}
        if unknown:
            raise ScoringError(f"scorer result has unknown keys {sorted(unknown)}; expected value, label, explanation, metadata")
        return ScoreResult(**raw)
    raise ScoringError(f"scorer returned {type(raw).__name__}; expected a ScoreResult, number, bool or dict")
