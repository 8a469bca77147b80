"""Checking run requests: a new run (target or client mode) and client-posted results.

Messages name the field as the client wrote it. Scorer names are checked against the server's
scorer registry by the caller (the scoring component owns it).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from spanlake.datasets import validate
from spanlake.datasets.errors import Invalid
from spanlake.scoring.base import ScoreResult, ScoringError

MAX_CONCURRENCY = 64
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0
MAX_ATTEMPTS = 5
MAX_SCORERS = 32
MAX_RESULTS_PER_CALL = 10_000
MAX_ERROR = 2000
RUN_FIELDS = ("name", "target", "mode", "scorers", "thresholds", "concurrency", "metadata", "as_of")
TARGET_FIELDS = ("url", "headers", "timeout_s", "max_attempts")
RESULT_FIELDS = ("item_id", "output", "trace_id", "span_id", "latency_ms", "tokens", "error", "scores")
SCORE_FIELDS = ("name", "value", "label", "data_type", "explanation", "metadata")
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


def run_spec(body: dict[str, Any]) -> RunSpec:
    unknown = sorted(set(body) - set(RUN_FIELDS))
    if unknown:
        raise Invalid(f"{unknown[0]} is not a run field; expected {', '.join(RUN_FIELDS)}")
    name = None if body.get("name") is None else run_name(body["name"])
    mode = body.get("mode")
    if mode is not None and mode not in ("server", "client"):
        raise Invalid(f"mode must be server or client, got {mode!r}")
    raw_target = body.get("target")
    if mode == "client" and raw_target is not None:
        raise Invalid("a client-mode run has no target; leave target out (or null)")
    if mode == "server" and raw_target is None:
        raise Invalid("a server-mode run needs target: {\"url\": ...}")
    target = None if raw_target is None else _target(raw_target)
    scorers = _scorers(body.get("scorers"))
    thresholds = _thresholds(body.get("thresholds"), scorers)
    concurrency = body.get("concurrency", DEFAULT_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise Invalid(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    as_of = body.get("as_of")
    if as_of is not None and not isinstance(as_of, str):
        raise Invalid(f"as_of must be an ISO-8601 time string, got {as_of!r}")
    return RunSpec(
        name=name, mode="client" if target is None else "server", target=target, scorers=scorers,
        thresholds=thresholds, concurrency=concurrency, metadata=validate.metadata(body.get("metadata")),
        as_of=None if as_of is None else validate.instant(as_of),
    )


def run_name(value: Any, path: str = "name") -> str:
    name = validate.text(value, path, max_len=validate.MAX_NAME)
    if not name.strip() or name != name.strip():
        raise Invalid(f"{path} must be non-empty without leading or trailing whitespace, got {name!r}")
    if "/" in name or "," in name:
        raise Invalid(f"{path} must not contain '/' or ',' (names appear in URLs and run lists), got {name!r}")
    if name == "compare":
        raise Invalid(f"{path} cannot be 'compare' (GET .../runs/compare compares runs)")
    return name


def _target(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid('target must be an object: {"url": "https://...", "headers": {...}} (or null for client mode)')
    unknown = sorted(set(raw) - set(TARGET_FIELDS))
    if unknown:
        raise Invalid(f"target.{unknown[0]} is not a target field; expected {', '.join(TARGET_FIELDS)}")
    url = validate.text(raw.get("url"), "target.url", max_len=2000)
    try:
        parts = urlsplit(url)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        parsed = parts = None
    if parts is None or parsed is None or parts.scheme not in ("http", "https") or not parsed.host:
        raise Invalid(f"target.url must be an absolute http(s) URL, got {url!r}")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        raise Invalid("target.headers must be an object of header names to string values")
    for key, value in headers.items():
        if not _HEADER_NAME.match(key) or key.lower() in _RESERVED_HEADERS:
            raise Invalid(f"target.headers: {key!r} is not a header spanlake can send")
        validate.text(value, f"target.headers.{key}", max_len=8000)
        if not value.isascii():
            raise Invalid(f"target.headers.{key}: header values must be ASCII text")
    timeout = raw.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise Invalid(f"target.timeout_s must be a number in (0, {MAX_TIMEOUT_S:g}], got {timeout!r}")
    attempts = raw.get("max_attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        raise Invalid(f"target.max_attempts must be an integer from 1 to {MAX_ATTEMPTS}, got {attempts!r}")
    return {"url": url, "headers": dict(headers), "timeout_s": float(timeout), "max_attempts": attempts}


def _scorers(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_SCORERS:
        raise Invalid(f"scorers must be a list of at most {MAX_SCORERS} scorer names (GET /api/scorers lists them)")
    names = [validate.text(s, f"scorers[{n}]", max_len=200) for n, s in enumerate(raw)]
    return tuple(dict.fromkeys(names))


def _thresholds(raw: Any, scorers: tuple[str, ...]) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("thresholds must be an object of scorer name to the value a result needs to pass")
    out: dict[str, float] = {}
    for name, value in raw.items():
        if name not in scorers:
            raise Invalid(f"thresholds.{name}: not one of the run's scorers")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Invalid(f"thresholds.{name} must be a number, got {value!r}")
        out[name] = float(value)
    return out


def posted_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for `store.runs.post_results`: one per item id, the last one winning within a request."""
    if set(body) - {"results"}:
        raise Invalid(f"{sorted(set(body) - {'results'})[0]} is not a field here; send {{\"results\": [...]}}")
    results = body.get("results")
    if not isinstance(results, list) or not results:
        raise Invalid('results must be a non-empty list: {"results": [{"item_id": ..., "output": ...}]}')
    if len(results) > MAX_RESULTS_PER_CALL:
        raise Invalid(f"results holds {len(results)} results; the limit is {MAX_RESULTS_PER_CALL} per call")
    rows: dict[str, dict[str, Any]] = {}
    for n, raw in enumerate(results):
        row = _result(raw, f"results[{n}]")
        rows.pop(row["item_id"], None)
        rows[row["item_id"]] = {**row, "_index": n}
    return list(rows.values())


def _result(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid(f"{path} must be an object with item_id and output")
    unknown = sorted(set(raw) - set(RESULT_FIELDS))
    if unknown:
        raise Invalid(f"{path}.{unknown[0]} is not a result field; expected {', '.join(RESULT_FIELDS)}")
    item_id = validate.text(raw.get("item_id"), f"{path}.item_id", max_len=100)
    error = raw.get("error")
    if error is not None:
        error = validate.text(error, f"{path}.error", max_len=100_000, control_ok=True)[:MAX_ERROR]
    trace, span = raw.get("trace_id"), raw.get("span_id")
    if span is not None and trace is None:
        raise Invalid(f"{path}.span_id needs {path}.trace_id")
    latency = raw.get("latency_ms")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float))
                                or not math.isfinite(latency) or latency < 0):
        raise Invalid(f"{path}.latency_ms must be a number >= 0, got {latency!r}")
    output = raw.get("output")
    scores = _posted_scores(raw.get("scores"), f"{path}.scores")
    if scores and error is not None:
        raise Invalid(f"{path}.scores: an error result is not scored; leave scores out or the error")
    return {
        "item_id": item_id,
        "status": "error" if error is not None else "ok",
        "output": None if output is None else validate.json_text(output, f"{path}.output"),
        "error": error,
        "trace_id": None if trace is None else validate.hex_id(trace, f"{path}.trace_id", 32),
        "span_id": None if span is None else validate.hex_id(span, f"{path}.span_id", 16),
        "latency_ms": None if latency is None else float(latency),
        **tokens(raw.get("tokens"), f"{path}.tokens"),
        "scores": scores,
    }


def _posted_scores(raw: Any, path: str) -> list[dict[str, Any]]:
    """Scores the client computed itself (its own scorers), one per name, in the scores table's shape."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_POSTED_SCORES:
        raise Invalid(f"{path} must be a list of at most {MAX_POSTED_SCORES} scores: [{{\"name\", \"value\"}}]")
    out: dict[str, dict[str, Any]] = {}
    for n, score in enumerate(raw):
        where = f"{path}[{n}]"
        if not isinstance(score, dict):
            raise Invalid(f"{where} must be an object with name and value (or label)")
        unknown = sorted(set(score) - set(SCORE_FIELDS))
        if unknown:
            raise Invalid(f"{where}.{unknown[0]} is not a score field; expected {', '.join(SCORE_FIELDS)}")
        name = validate.text(score.get("name"), f"{where}.name", max_len=200)
        if not name.strip():
            raise Invalid(f"{where}.name must not be empty")
        label = None if score.get("label") is None else validate.text(score["label"], f"{where}.label", max_len=1000)
        explanation = score.get("explanation")
        if explanation is not None:
            explanation = validate.text(explanation, f"{where}.explanation", max_len=MAX_EXPLANATION, control_ok=True)
        value = score.get("value")
        if value is not None and (not isinstance(value, (bool, int, float))):
            raise Invalid(f"{where}.value must be a number or a boolean, got {value!r}")
        data_type = score.get("data_type")
        try:
            stored, data_type = ScoreResult(value, label, data_type=data_type).normalized()
        except (OverflowError, ScoringError) as exc:
            raise Invalid(f"{where}: {exc}") from None
        metadata = score.get("metadata")
        out[name] = {
            "name": name, "value": stored, "label": label, "data_type": data_type, "explanation": explanation,
            "metadata": None if metadata is None else validate.json_text(validate.metadata(metadata, f"{where}.metadata"),
                                                                        f"{where}.metadata"),
        }
    return list(out.values())


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
