"""Checking run requests: a new run (target or client mode) and client-posted results.

Messages name the field as the client wrote it. Scorer names are checked against the server's
scorer registry by the caller (the scoring component owns it).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, model_validator

from spanlake.datasets import validate
from spanlake.datasets.errors import Invalid
from spanlake.scoring.base import ScoreResult, ScoringError
from spanlake.validation import check, refuse, validated

MAX_CONCURRENCY = 64
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0
MAX_ATTEMPTS = 5
MAX_SCORERS = 32
MAX_RESULTS_PER_CALL = 10_000
MAX_ERROR = 2000
MAX_POSTED_SCORES = 32
MAX_EXPLANATION = 10_000
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_RESERVED_HEADERS = frozenset({"traceparent", "tracestate", "content-length", "host", "content-type", "transfer-encoding"})


@dataclass(frozen=True)
class RunSpec:
    """A validated `POST .../runs` body."""

    name: str | None
    mode: str  # server | client
    target: dict[str, Any] | None
    scorers: tuple[str, ...]
    thresholds: dict[str, float] = field(default_factory=dict)
    concurrency: int = DEFAULT_CONCURRENCY
    metadata: dict[str, Any] = field(default_factory=dict)
    as_of: dt.datetime | None = None


def run_name(value: Any, path: str = "name") -> str:
    name = validate.text(value, path, max_len=validate.MAX_NAME)
    if not name.strip() or name != name.strip():
        raise Invalid(f"{path} must be non-empty without leading or trailing whitespace, got {name!r}")
    if "/" in name or "," in name:
        raise Invalid(f"{path} must not contain '/' or ',' (names appear in URLs and run lists), got {name!r}")
    if name == "compare":
        raise Invalid(f"{path} cannot be 'compare' (GET .../runs/compare compares runs)")
    return name


def _url(value: Any, path: str) -> str:
    url = validate.text(value, path, max_len=2000)
    try:
        parts = urlsplit(url)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        parsed = parts = None
    if parts is None or parsed is None or parts.scheme not in ("http", "https") or not parsed.host:
        raise Invalid(f"{path} must be an absolute http(s) URL, got {url!r}")
    return url


def _headers(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{path} must be an object of header names to string values")
    for key, text in value.items():
        if not _HEADER_NAME.match(key) or key.lower() in _RESERVED_HEADERS:
            raise Invalid(f"{path}: {key!r} is not a header spanlake can send")
        validate.text(text, f"{path}.{key}", max_len=8000)
        if not text.isascii():
            raise Invalid(f"{path}.{key}: header values must be ASCII text")
    return value


class Target(BaseModel):
    """The HTTP target spanlake POSTs each item to."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(max_length=2000, json_schema_extra={"format": "uri"}), check(_url)]
    headers: Annotated[dict[str, str], check(_headers)] = Field(default_factory=dict)
    timeout_s: StrictFloat = Field(DEFAULT_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S)
    max_attempts: StrictInt = Field(1, ge=1, le=MAX_ATTEMPTS)


class NewRun(BaseModel):
    """`POST .../runs`: a server-side run with a target, or a client-side one without."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(min_length=1, max_length=validate.MAX_NAME), check(run_name)] = Field(
        None, description="unique in the dataset (default: generated)")
    mode: Literal["server", "client"] | None = Field(None, description="default: server with a target, client without")
    target: Target | None = Field(None, description="null for a client-side run")
    scorers: list[Annotated[str, Field(max_length=200), validate.checked_text(200)]] | None = Field(None, max_length=MAX_SCORERS)
    thresholds: dict[str, StrictFloat] | None = Field(None, description="per scorer: the value a result needs to pass")
    concurrency: StrictInt = Field(DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    metadata: validate.Metadata = None
    as_of: Annotated[str | None, Field(json_schema_extra={"format": "date-time"}),
                     check(lambda v, p: v if v is None else (validate.instant(v, p), v)[1])] = Field(
        None, description="run on the dataset as it was then (default: now)")

    @model_validator(mode="after")
    def _consistent(self) -> "NewRun":
        if self.mode == "client" and self.target is not None:
            raise refuse("a client-mode run has no target; leave target out (or null)")
        if self.mode == "server" and self.target is None:
            raise refuse("a server-mode run needs target: {\"url\": ...}")
        for name in self.thresholds or {}:
            if name not in (self.scorers or ()):
                raise refuse(f"thresholds.{name}: not one of the run's scorers")
        return self


def run_spec(body: NewRun | dict[str, Any]) -> RunSpec:
    body = validated(NewRun, body)
    target = body.target
    return RunSpec(
        name=body.name, mode="client" if target is None else "server",
        target=None if target is None else target.model_dump(), scorers=tuple(dict.fromkeys(body.scorers or ())),
        thresholds={k: float(v) for k, v in (body.thresholds or {}).items()}, concurrency=body.concurrency,
        metadata=body.metadata or {}, as_of=None if body.as_of is None else validate.instant(body.as_of),
    )


def _tokens(value: Any, path: str) -> Any:
    tokens(value, path)
    return value


class PostedScore(BaseModel):
    """A score the client computed itself (its own scorer, not the run's server scorers)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200),
                    check(lambda v, p: _nonblank(validate.text(v, p, max_len=200), p))]
    value: StrictBool | StrictFloat | None = None
    label: Annotated[str | None, Field(max_length=1000), validate.checked_text(1000)] = None
    data_type: Literal["numeric", "boolean", "categorical"] | None = None
    explanation: Annotated[str | None, Field(max_length=MAX_EXPLANATION),
                           validate.checked_text(MAX_EXPLANATION, control_ok=True)] = None
    metadata: validate.Metadata = None

    @model_validator(mode="after")
    def _normalized(self) -> "PostedScore":
        try:
            ScoreResult(self.value, self.label, data_type=self.data_type).normalized()
        except (OverflowError, ScoringError) as exc:
            raise refuse(str(exc)) from None
        return self

    def row(self) -> dict[str, Any]:
        stored, data_type = ScoreResult(self.value, self.label, data_type=self.data_type).normalized()
        return {
            "name": self.name, "value": stored, "label": self.label, "data_type": data_type, "explanation": self.explanation,
            "metadata": None if self.metadata is None else validate.json_text(self.metadata, "metadata"),
        }


def _nonblank(value: str, path: str) -> str:
    if not value.strip():
        raise Invalid(f"{path} must not be empty")
    return value


class PostedResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Annotated[str, Field(max_length=100), validate.checked_text(100)]
    output: validate.AnyJson = None
    trace_id: validate.hex_field(32) = None  # type: ignore[valid-type]
    span_id: validate.hex_field(16) = None  # type: ignore[valid-type]
    latency_ms: StrictFloat | None = Field(None, ge=0)
    tokens: Annotated[StrictInt | dict[str, StrictInt] | None, check(_tokens)] = Field(
        None, description="a total, or {input, output, total}")
    error: Annotated[str | None, validate.checked_text(100_000, control_ok=True)] = Field(
        None, description="the item failed with this message")
    scores: list[PostedScore] | None = Field(
        None, max_length=MAX_POSTED_SCORES, description="the client's own scores of this result; linked to the "
        "result's trace when the run is scored")

    @model_validator(mode="after")
    def _consistent(self) -> "PostedResult":
        if self.span_id is not None and self.trace_id is None:
            raise refuse("span_id needs trace_id")
        if self.scores and self.error is not None:
            raise refuse("scores: an error result is not scored; leave scores out or the error")
        return self

    def row(self, index: int) -> dict[str, Any]:
        scores = {s.name: s.row() for s in self.scores or ()}  # one per name, the last one winning
        return {
            "item_id": self.item_id,
            "status": "error" if self.error is not None else "ok",
            "output": None if self.output is None else validate.json_text(self.output, "output"),
            "error": None if self.error is None else self.error[:MAX_ERROR],
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "latency_ms": None if self.latency_ms is None else float(self.latency_ms),
            **tokens(self.tokens, "tokens"),
            "scores": list(scores.values()),
            "_index": index,
        }


class PostedResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: list[PostedResult] = Field(min_length=1, max_length=MAX_RESULTS_PER_CALL)


def posted_results(body: PostedResults | dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for `store.runs.post_results`: one per item id, the last one winning within a request."""
    body = validated(PostedResults, body)
    rows: dict[str, dict[str, Any]] = {}
    for n, result in enumerate(body.results):
        rows.pop(result.item_id, None)
        rows[result.item_id] = result.row(n)
    return list(rows.values())


_TOKEN_KEYS = {
    "input_tokens": ("input", "input_tokens", "prompt_tokens"),
    "output_tokens": ("output", "output_tokens", "completion_tokens"),
    "total_tokens": ("total", "total_tokens"),
}


def tokens(raw: Any, path: str, *, strict: bool = True) -> dict[str, int | None]:
    """Token usage: an integer (the total) or an object with input/output/total (OpenAI names too)."""
    none = {k: None for k in _TOKEN_KEYS}
    if raw is None:
        return none
    if _count(raw):
        return {**none, "total_tokens": raw}
    if not isinstance(raw, dict):
        if strict:
            raise Invalid(f"{path} must be a token count or an object with input, output and/or total")
        return none
    out = dict(none)
    for column, names in _TOKEN_KEYS.items():
        for name in names:
            if name in raw:
                if not _count(raw[name]):
                    if strict:
                        raise Invalid(f"{path}.{name} must be an integer >= 0, got {raw[name]!r}")
                    continue
                out[column] = raw[name]
                break
    return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62
