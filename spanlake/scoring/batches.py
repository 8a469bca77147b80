"""Accepting a batch: check the request, resolve which traces it means, store it as a job.

Everything a client can get wrong is checked here, before the 202: the scorer, the shape of the
selection, the ids. Scoring itself happens later in the component's runners.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from functools import partial
from dataclasses import dataclass
from typing import Any

from spanlake.scoring.registry import ScorerRegistry
from spanlake.store import Store, jobs
from spanlake.store.actor import current_actor
from spanlake.store.trace_reads import SAMPLE_SPACE, known_traces, traces_matching

KIND = "score_batch"
MAX_TRACES = 100_000
DEFAULT_FILTER_LIMIT = 1000
MAX_REPORTED_UNKNOWN = 1000
_TRACE_ID = re.compile(r"[0-9a-f]{32}\Z")
_SPAN_ID = re.compile(r"[0-9a-f]{16}\Z")


class BatchRequestError(ValueError):
    """The request is malformed; `status` says which 4xx fits."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request", **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra


@dataclass(frozen=True)
class BatchRequest:
    scorer: str
    targets: list[tuple[str, str | None]] | None = None  # (trace_id, span_id or None = whole trace)
    filter: Any = None
    limit: int = DEFAULT_FILTER_LIMIT
    sample: float | None = None


def sample_threshold(rate: float) -> int:
    return math.floor(rate * SAMPLE_SPACE)


def sampled(trace_id: str, rate: float) -> bool:
    """Deterministic: the same trace is in or out of a given rate's sample every time."""
    return int(hashlib.md5(trace_id.encode()).hexdigest()[:15], 16) < sample_threshold(rate)


def _id(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value.lower()) or set(value) == {"0"}:
        raise BatchRequestError(f"{what} must be {16 if pattern is _SPAN_ID else 32} hex characters, got {value!r}")
    return value.lower()


def parse_request(body: dict[str, Any], registry: ScorerRegistry) -> BatchRequest:
    """Check and normalise a request (ids validated, sample applied); CPU-bound, call it off the loop."""
    scorer = body.get("scorer")
    if not isinstance(scorer, str) or not scorer:
        raise BatchRequestError("scorer: required, the name of a scorer (GET /api/scorers lists them)")
    if registry.get(scorer) is None:
        known = ", ".join(sorted(registry.scorers))
        raise BatchRequestError(
            f"scorer {scorer!r} is not available; GET /api/scorers lists them ({known})", status=404, code="unknown_scorer"
        )
    if registry.get(scorer).type.needs_expected_output:
        raise BatchRequestError(
            f"scorer {scorer!r} compares an output with a dataset item's expected output, and traces have none; "
            "use it in a dataset run (POST /api/datasets/{dataset}/runs), or pick a scorer that reads the trace alone"
        )
    unknown_keys = set(body) - {"scorer", "trace_ids", "targets", "filter", "limit", "sample"}
    if unknown_keys:
        raise BatchRequestError(f"{sorted(unknown_keys)[0]}: unknown field; expected trace_ids, targets or filter (+ limit), sample")
    given = [k for k in ("trace_ids", "targets", "filter") if body.get(k) is not None]
    if len(given) != 1:
        raise BatchRequestError("give exactly one of trace_ids, targets or filter")
    sample = body.get("sample")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 < sample <= 1):
        raise BatchRequestError(f"sample must be a number in (0, 1], got {sample!r}")
    req: dict[str, Any] = {"scorer": scorer, "sample": sample}
    if "limit" in body and given[0] != "filter":
        raise BatchRequestError("limit applies to filter only")
    if given[0] == "trace_ids":
        ids = body["trace_ids"]
        if not isinstance(ids, list) or not ids:
            raise BatchRequestError("trace_ids must be a non-empty list of 32-hex trace ids")
        req["targets"] = [(_id(t, _TRACE_ID, f"trace_ids[{i}]"), None) for i, t in enumerate(ids)]
    elif given[0] == "targets":
        targets = body["targets"]
        if not isinstance(targets, list) or not targets:
            raise BatchRequestError("targets must be a non-empty list of {trace_id, span_id}")
        parsed = []
        for i, t in enumerate(targets):
            if not isinstance(t, dict) or "trace_id" not in t:
                raise BatchRequestError(f"targets[{i}] must be an object with trace_id and span_id")
            extra = sorted(set(t) - {"trace_id", "span_id"})
            if extra:  # a misspelt span_id would otherwise score the whole trace
                raise BatchRequestError(f"targets[{i}].{extra[0]}: unknown field; expected trace_id and span_id")
            span = t.get("span_id")
            parsed.append(
                (_id(t["trace_id"], _TRACE_ID, f"targets[{i}].trace_id"),
                 None if span is None else _id(span, _SPAN_ID, f"targets[{i}].span_id"))
            )
        req["targets"] = parsed
    else:
        limit = body.get("limit", DEFAULT_FILTER_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TRACES:
            raise BatchRequestError(f"limit must be an integer between 1 and {MAX_TRACES}, got {limit!r}")
        req["filter"], req["limit"] = body["filter"], limit
    if req.get("targets") is not None:
        req["targets"] = list(dict.fromkeys(req["targets"]))  # drop repeats, keep order
        if len(req["targets"]) > MAX_TRACES:
            raise BatchRequestError(f"at most {MAX_TRACES} targets per batch, got {len(req['targets'])}", status=413, code="too_large")
        if sample is not None:  # a filter samples in SQL, with the same hash
            req["targets"] = [t for t in req["targets"] if sampled(t[0], sample)]
    return BatchRequest(**req)


async def create_batch(store: Store, req: BatchRequest) -> tuple[jobs.Job, list[str]]:
    """Resolve the selection and store the job; returns it with the trace ids the store lacks."""
    unknown: list[str] = []
    if req.filter is not None:
        from spanlake.filters import FilterError
        from spanlake.store.filter_sql import compile_filter

        try:
            compiled = compile_filter(req.filter, alias="s")
        except (FilterError, ValueError, TypeError) as exc:
            raise BatchRequestError(f"filter: {exc}", code="invalid_filter") from None
        threshold = sample_threshold(req.sample) if req.sample is not None else None
        select = partial(traces_matching, match=compiled, limit=req.limit, sample_threshold=threshold)
        rows = await store.read(select)
        starts = dict(rows)
        targets: list[tuple[str, str | None]] = [(t, None) for t, _ in rows]
    else:
        assert req.targets is not None
        targets = list(req.targets)
        starts = await store.read(known_traces, list({t for t, _ in targets}))
        unknown = list(dict.fromkeys(t for t, _ in targets if t not in starts))
        if targets and not starts:
            raise BatchRequestError(
                f"none of the {len(unknown)} trace ids is in the store", status=404, code="traces_not_found",
                unknown_trace_ids=unknown[:MAX_REPORTED_UNKNOWN],
            )
        targets = [t for t in targets if t[0] in starts]
    # Oldest first: neighbouring items then share row groups when their spans are loaded.
    targets.sort(key=lambda t: (starts.get(t[0]) or dt.datetime.min, t[0]))
    params = {
        "scorer": req.scorer,
        "selection": "filter" if req.filter is not None else "ids",
        "filter": req.filter,
        "limit": req.limit if req.filter is not None else None,
        "sample": req.sample,
        "unknown_trace_ids": unknown[:MAX_REPORTED_UNKNOWN],
        "unknown_count": len(unknown),
        "created_by": current_actor(),  # its scores are recorded as written by the requesting key
    }
    job = await store.write(jobs.create_job, KIND, params, targets)
    return job, unknown
