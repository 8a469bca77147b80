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
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from spanlake.datasets.errors import DatasetError
from spanlake.store.trace_reads import SAMPLE_SPACE, known_traces, traces_matching
from spanlake.scoring.registry import ScorerRegistry
from spanlake.store import Store, jobs
from spanlake.store.actor import current_actor
from spanlake.validation import refuse

KIND = "score_batch"
MAX_TRACES = 100_000
DEFAULT_FILTER_LIMIT = 1000
MAX_REPORTED_UNKNOWN = 1000
_TRACE_ID = re.compile(r"[0-9a-f]{32}\Z")
_SPAN_ID = re.compile(r"[0-9a-f]{16}\Z")


class BatchRequestError(DatasetError):
    """The request cannot be accepted; `status` says which 4xx fits (the API's handler renders it)."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request", **extra: Any):
        super().__init__(message, **extra)  # status and code vary per refusal
        self.status = status
        self.code = code


@dataclass(frozen=True)
class BatchRequest:
    scorer: str
    targets: list[tuple[str, str | None]] | None = None  # (trace_id, span_id or None = whole trace)
    filter: Any = None
    limit: int = DEFAULT_FILTER_LIMIT
    sample: float | None = None


_HexTrace = Annotated[str, Field(pattern="^[0-9a-fA-F]{32}$")]
_HexSpan = Annotated[str, Field(pattern="^[0-9a-fA-F]{16}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchTarget(_Body):
    trace_id: _HexTrace
    span_id: _HexSpan | None = None


class ScoreBatchRequest(_Body):
    """`POST /api/scores/batch`: a scorer and exactly one of trace_ids, targets or filter."""

    scorer: str = Field(min_length=1, description="GET /api/scorers lists them")
    trace_ids: list[_HexTrace] | None = Field(None, min_length=1)
    targets: list[BatchTarget] | None = Field(None, min_length=1)
    filter: dict[str, Any] | None = Field(None, description="filter tree; a trace is selected when any span matches")
    limit: StrictInt | None = Field(None, ge=1, le=MAX_TRACES, description=f"with filter (default {DEFAULT_FILTER_LIMIT})")
    sample: StrictFloat | None = Field(None, gt=0, le=1, description="deterministic by trace id")

    @model_validator(mode="after")
    def _one_selection(self) -> "ScoreBatchRequest":
        given = [k for k in ("trace_ids", "targets", "filter") if getattr(self, k) is not None]
        if len(given) != 1:
            raise refuse("give exactly one of trace_ids, targets or filter")
        if self.limit is not None and given[0] != "filter":
            raise refuse("limit applies to filter only")
        return self


def sample_threshold(rate: float) -> int:
    return math.floor(rate * SAMPLE_SPACE)


def sampled(trace_id: str, rate: float) -> bool:
    """Deterministic: the same trace is in or out of a given rate's sample every time."""
    return int(hashlib.md5(trace_id.encode()).hexdigest()[:15], 16) < sample_threshold(rate)


def _id(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value.lower()) or set(value) == {"0"}:
        raise BatchRequestError(f"{what} must be {16 if pattern is _SPAN_ID else 32} hex characters, got {value!r}")
    return value.lower()


def parse_request(body: ScoreBatchRequest, registry: ScorerRegistry) -> BatchRequest:
    """Check the scorer and normalise the selection (ids lowercased, repeats dropped, sample
    applied); CPU-bound for 100k ids, call it off the loop."""
    scorer = body.scorer
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
    sample = body.sample
    if body.filter is not None:
        return BatchRequest(scorer=scorer, filter=body.filter, limit=body.limit or DEFAULT_FILTER_LIMIT, sample=sample)
    if body.trace_ids is not None:
        targets = [(_id(t, _TRACE_ID, f"trace_ids[{i}]"), None) for i, t in enumerate(body.trace_ids)]
    else:
        assert body.targets is not None
        targets = [
            (_id(t.trace_id, _TRACE_ID, f"targets[{i}].trace_id"),
             None if t.span_id is None else _id(t.span_id, _SPAN_ID, f"targets[{i}].span_id"))
            for i, t in enumerate(body.targets)
        ]
    targets = list(dict.fromkeys(targets))  # drop repeats, keep order
    if len(targets) > MAX_TRACES:
        raise BatchRequestError(f"at most {MAX_TRACES} targets per batch, got {len(targets)}", status=413, code="too_large")
    if sample is not None:  # a filter samples in SQL, with the same hash
        targets = [t for t in targets if sampled(t[0], sample)]
    return BatchRequest(scorer=scorer, targets=targets, sample=sample)


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
