"""Scoring one run result with each of the run's scorers.

A scorer sees the item's input (`ctx.input`), its expected output (`ctx.expected_output`) and what
the run produced (`ctx.output` / `ctx.actual_output`). When the result's trace is in the store,
`ctx.spans` is that trace and `ctx.span` the span that handled the call (the target's span whose
parent is the traceparent spanlake sent, else the root) with the item's input and the result's
output; the score is then linked to that trace and span. Without a stored trace, `ctx.spans`
holds one synthetic span built from the result (latency, tokens, error status) and the score is
kept with trace_id NULL, found through its run result.

Retries follow the batch engine: transient errors back off and try again up to `max_attempts`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from spanlake.scoring.base import ScoreContext, ScoreResult, ScoringError, TransientError, as_text
from spanlake.scoring.engine import MAX_EXPLANATION, backoff_delay
from spanlake.scoring.registry import RegisteredScorer
from spanlake.clock import utc_now


@dataclass
class Scored:
    """What scoring one result produced: score rows, failures by scorer, and the span it ran as."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    span_link: tuple[str, str] | None = None  # (result id, span id) to record on the result
    trace_link: tuple[str, str, str] | None = None  # (result id, trace id, span id): for the client's own scores


def context(work: dict[str, Any], spans: list[dict[str, Any]] | None, params: Any) -> tuple[ScoreContext, str | None]:
    """The ScoreContext of a result, and the stored span it links to (None without a stored trace)."""
    output = work["output"]
    if spans:
        entry = next((s for s in spans if work.get("span_id") and s["span_id"] == work["span_id"]), None)
        if entry is None and work.get("parent_span_id"):
            entry = next((s for s in spans if s.get("parent_span_id") == work["parent_span_id"]), None)
        entry = entry or spans[0]
        target = {**entry, "input": as_text(work["input"]), "output": as_text(output)}
        ctx = ScoreContext(trace_id=work["trace_id"], spans=spans, target=target, params=params,
                           expected_output=work["expected_output"], actual_output=output)
        return ctx, entry["span_id"]
    synthetic = {
        "trace_id": work.get("trace_id") or "", "span_id": None, "parent_span_id": None, "name": "run.item",
        "status": "ERROR" if work["status"] == "error" else "UNSET", "duration_ms": work.get("latency_ms"),
        "input": as_text(work["input"]), "output": as_text(output), "span_type": None,
        "input_tokens": work.get("input_tokens"), "output_tokens": work.get("output_tokens"),
        "total_tokens": work.get("total_tokens"), "attributes": {}, "end_time_unix_nano": None,
    }
    ctx = ScoreContext(trace_id=work.get("trace_id") or "", spans=[synthetic], target=synthetic, params=params,
                       expected_output=work["expected_output"], actual_output=output)
    return ctx, None


async def score_result(
    work: dict[str, Any], spans: list[dict[str, Any]] | None, scorers: list[RegisteredScorer], run_id: str
) -> Scored:
    """Every scorer on one successful result; a scorer's failure is reported, never raised."""
    scored = Scored()
    _, linked_span = context(work, spans, {})
    calls = [_attempts(scorer, context(work, spans, scorer.params)[0]) for scorer in scorers]
    outcomes = zip(scorers, await asyncio.gather(*calls))
    for scorer, outcome in outcomes:
        if isinstance(outcome, ScoreResult):
            try:
                scored.rows.append(_row(work, scorer, outcome, linked_span, run_id))
                continue
            except ScoringError as exc:
                outcome = exc
        scored.failures.append(f"{scorer.name}: {outcome}")
    if linked_span is not None:
        scored.trace_link = (work["id"], work["trace_id"], linked_span)
        if work.get("span_id") is None:
            scored.span_link = (work["id"], linked_span)
    return scored


async def _attempts(scorer: RegisteredScorer, ctx: ScoreContext) -> ScoreResult | Exception:
    attempts = 0
    while True:
        attempts += 1
        try:
            if scorer.is_async:
                async with scorer.slots:
                    async with asyncio.timeout(scorer.timeout_s):
                        result = await scorer.scorer.score(ctx)  # type: ignore[misc]
            else:
                result = await asyncio.to_thread(scorer.scorer.score, ctx)
            if not isinstance(result, ScoreResult):
                return ScoringError(f"scorer returned {type(result).__name__}, not a ScoreResult")
            return result
        except TimeoutError:
            error: Exception = TransientError(f"no answer within {scorer.timeout_s:g}s")
        except TransientError as exc:
            error = exc
        except ScoringError as exc:
            return exc
        except Exception as exc:  # a scorer's bug fails its result, never the run
            return ScoringError(f"{type(exc).__name__}: {exc}")
        if attempts >= scorer.max_attempts:
            return ScoringError(f"gave up after {attempts} attempts: {error}")
        await asyncio.sleep(backoff_delay(attempts, getattr(error, "retry_after", None)))


def _row(work: dict[str, Any], scorer: RegisteredScorer, result: ScoreResult, span_id: str | None, run_id: str) -> dict[str, Any]:
    value, data_type = result.normalized()
    explanation = result.explanation
    if explanation is not None and len(explanation) > MAX_EXPLANATION:
        explanation = explanation[:MAX_EXPLANATION] + "..."
    return {
        "id": uuid.uuid4().hex,
        "trace_id": work["trace_id"] if span_id is not None else None,
        "span_id": span_id,
        "name": scorer.name,
        "value": value,
        "label": result.label,
        "data_type": data_type,
        "source": "eval",
        "scorer": scorer.name,
        "explanation": explanation,
        "metadata": None if result.metadata is None else json.dumps(result.metadata, default=str),
        "batch_id": None,
        "run_id": run_id,
        "run_result_id": work["id"],
        "created_at": utc_now(),
    }
