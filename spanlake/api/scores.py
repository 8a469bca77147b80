"""Scorer, score and scoring batch routes.

The scoring component (spanlake/scoring/component.py) owns the scorer registry and runs the
batches; these handlers validate, hand over, and read back through spanlake/store/scores.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from spanlake.api import ids
from spanlake.api.contract import Operation, json_reply
from spanlake.api.errors import not_found
from spanlake.api.pagination import created_before, created_cursor
from spanlake.api.shapes.common import Listing, Paging
from spanlake.api.state import services_of
from spanlake.api.shapes.scores import (
    BatchListQuery, Score, ScoreBatch, ScoreBatchAccepted, ScoreFields, ScoreInput, ScoreListQuery,
    Scorer, ScorerResults, ScorerResultsQuery, ScoreSummaries, SpanScores, SummaryQuery, TargetScoresQuery, TraceScores,
)
from spanlake.clock import iso_from_datetime
from spanlake.scoring.batches import KIND, ScoreBatchRequest, parse_request
from spanlake.scoring.component import ScoringComponent
from spanlake.store.rule_scores import RULE_JOB_KIND
from spanlake.store import jobs
from spanlake.store import scores as score_store
from spanlake.store.score_summary import score_summary
from spanlake.store.trace_reads import known_traces
from spanlake.clock import utc_now


def _component(request: Request) -> ScoringComponent:
    return services_of(request).scoring


def _store(request: Request) -> Any:
    return services_of(request).store


def _next_cursor(items: list[dict[str, Any]], limit: int, time_key: str, id_key: str) -> str | None:
    if len(items) < limit:
        return None
    return created_cursor(items[-1][time_key], items[-1][id_key])


def _score_query(q: ScoreFields, **fixed: Any) -> score_store.ScoreQuery:
    values: dict[str, Any] = {key: getattr(q, key) for key in ("name", "scorer", "batch_id", "source") if getattr(q, key, None)}
    for key, check in (("trace_id", ids.trace_id), ("span_id", ids.span_id)):
        if getattr(q, key, None):
            values[key] = check(getattr(q, key))
    if getattr(q, "item_id", None):
        values["item_id"] = q.item_id  # type: ignore[attr-defined]
    values["min_value"] = q.min_value
    values["max_value"] = q.max_value
    values.update(fixed)
    return score_store.ScoreQuery(**values)


async def _score_page(request: Request, page: Paging, scores: score_store.ScoreQuery, **extra: Any) -> JSONResponse:
    before = created_before(page.cursor)
    items = await _store(request).read(partial(score_store.list_scores, query=scores, limit=page.limit, before=before))
    return JSONResponse({**extra, "items": items, "next_cursor": _next_cursor(items, page.limit, "created_at", "id")})


# Scorers ------------------------------------------------------------------------------------


async def list_scorers(request: Request) -> JSONResponse:
    return JSONResponse({"items": _component(request).registry.describe(), "next_cursor": None})


async def scorer_results(request: Request, *, query: ScorerResultsQuery) -> JSONResponse:
    name = request.path_params["name"]
    registry = _component(request).registry
    scores = _score_query(query, scorer=name)
    store = _store(request)
    stats = await store.read(partial(score_store.score_stats, query=scores, pass_threshold=query.pass_threshold))
    if stats["count"] == 0 and registry.get(name) is None:
        raise not_found(f"scorer {name!r} is not available and has no scores")
    before = created_before(query.cursor)
    items = await store.read(partial(score_store.list_scores, query=scores, limit=query.limit, before=before))
    for item in items:
        item["trace_url"] = f"/api/traces/{item['trace_id']}" if item["trace_id"] else None  # run scores may have none
    return JSONResponse(
        {"scorer": name, "stats": stats, "items": items,
         "next_cursor": _next_cursor(items, query.limit, "created_at", "id")}
    )


def summary_params(q: SummaryQuery) -> dict[str, Any]:
    """The query of GET /api/scores/summary (the scores page reads the same)."""
    return {"query": _score_query(q), "pass_threshold": q.pass_threshold, "bins": q.bins, "worst": q.worst}


async def summarize_scores(request: Request, *, query: SummaryQuery) -> JSONResponse:
    params = summary_params(query)
    items = await _store(request).read(partial(score_summary, **params))
    return JSONResponse({"items": items, "next_cursor": None, "pass_threshold": params["pass_threshold"]})


# Batches ------------------------------------------------------------------------------------


def batch_json(job: jobs.Job) -> dict[str, Any]:
    params = job.params
    return {
        "batch_id": job.id,
        "status": job.status,
        "scorer": params.get("scorer"),
        "total": job.total,
        "completed": job.completed,
        "failed": job.failed,
        "pending": max(0, job.total - job.completed - job.failed),
        "errors": job.errors,
        "selection": params.get("selection"),
        "filter": params.get("filter"),
        "sample": params.get("sample"),
        "unknown_trace_ids": params.get("unknown_trace_ids", []),
        "rule": params.get("rule"),  # set for a scoring rule's job
        "created_at": iso_from_datetime(job.created_at),
        "updated_at": iso_from_datetime(job.updated_at),
        "finished_at": iso_from_datetime(job.finished_at),
    }


async def create_batch(request: Request, *, body: ScoreBatchRequest) -> JSONResponse:
    component = _component(request)
    batch = await asyncio.to_thread(parse_request, body, component.registry)  # 100k ids: ~0.2 s of CPU
    job, unknown = await component.submit(batch)
    return JSONResponse(
        {
            "batch_id": job.id,
            "status": "accepted",
            "trace_count": job.total,
            "unknown_trace_ids": unknown[:1000],
            "unknown_count": len(unknown),
            "url": f"/api/scores/batches/{job.id}",
        },
        status_code=202,
        headers={"Location": f"/api/scores/batches/{job.id}"},
    )


async def get_batch(request: Request) -> JSONResponse:
    batch_id = request.path_params["batch_id"]
    job = await _store(request).read(jobs.get_job, batch_id, KIND)
    if job is None:  # a scoring rule's job: its scores' batch_id names it too
        job = await _store(request).read(jobs.get_job, batch_id, RULE_JOB_KIND)
    if job is None:
        raise not_found(f"batch {batch_id} not found")
    return JSONResponse(batch_json(job))


async def list_batches(request: Request, *, query: BatchListQuery) -> JSONResponse:
    limit = query.limit
    by_scorer = {"scorer": query.scorer} if query.scorer else None
    found = await _store(request).read(
        partial(jobs.list_jobs, kind=KIND, limit=limit, status=query.status, before=created_before(query.cursor),
                param_equals=by_scorer)
    )
    items = [batch_json(j) for j in found]
    return JSONResponse({"items": items, "next_cursor": _next_cursor(items, limit, "created_at", "batch_id")})


# Scores -------------------------------------------------------------------------------------


def _manual_score(body: ScoreInput) -> dict[str, Any]:
    """A POST /api/scores body as a score row (identity fields included)."""
    stored, data_type = body.normalized()
    return {
        "id": uuid.uuid4().hex,
        # An item's score may stand alone: items added by hand have no trace.
        "trace_id": None if body.trace_id is None else ids.trace_id(body.trace_id),
        "span_id": None if body.span_id is None else ids.span_id(body.span_id),
        "item_id": body.item_id,
        "name": body.name,
        "value": stored,
        "label": body.label,
        "data_type": data_type,
        "source": body.source,
        "scorer": body.scorer,
        "explanation": body.explanation,
        "metadata": None if body.metadata is None else json.dumps(body.metadata),
        "created_at": utc_now(),
    }


async def create_score(request: Request, *, body: ScoreInput) -> JSONResponse:
    row = _manual_score(body)
    try:
        score = await _store(request).write(score_store.write_checked_score, row)
    except score_store.UnknownTrace:
        raise not_found(f"trace {row['trace_id']} is not in the store; only stored traces can be scored") from None
    except score_store.UnknownSpan:
        raise not_found(f"span {row['span_id']} is not in trace {row['trace_id']}") from None
    except score_store.UnknownItem:
        raise not_found(f"item {row['item_id']} is not a current item of any dataset") from None
    return JSONResponse(score, status_code=201)


async def list_scores(request: Request, *, query: ScoreListQuery) -> JSONResponse:
    return await _score_page(request, query, _score_query(query))


async def trace_scores(request: Request, *, query: TargetScoresQuery) -> JSONResponse:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    if not await _store(request).read(known_traces, [trace_id]):
        raise not_found(f"trace {trace_id} not found")
    return await _score_page(request, query, _score_query(query, trace_id=trace_id), trace_id=trace_id)


async def span_scores(request: Request, *, query: TargetScoresQuery) -> JSONResponse:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    span_id = ids.span_id(request.path_params["span_id"])
    try:
        found = await _store(request).read(score_store.span_exists, trace_id, span_id)
    except score_store.UnknownTrace:
        found = False
    if not found:
        raise not_found(f"span {span_id} of trace {trace_id} not found")
    scores = _score_query(query, trace_id=trace_id, span_id=span_id)
    return await _score_page(request, query, scores, trace_id=trace_id, span_id=span_id)


_TAGS = ("scores",)
OPERATIONS = [
    Operation("GET", "/api/scorers", list_scorers, "Every available scorer with its description and parameters", _TAGS,
              (json_reply(200, "Scorers", Listing[Scorer]),), errors=(503,)),
    Operation("GET", "/api/scorers/{name}/results", scorer_results,
              "A scorer's scores with links to their traces, and count, mean, pass rate, histogram", _TAGS,
              (json_reply(200, "Stats and a page of scores", ScorerResults),), errors=(404, 503), query=ScorerResultsQuery),
    Operation("POST", "/api/scores/batch", create_batch, "Score traces in the background; answers 202 before any scoring happens",
              _TAGS, (json_reply(202, "Accepted", ScoreBatchAccepted),), errors=(404, 503), body=ScoreBatchRequest,
              strict_json=False),
    Operation("GET", "/api/scores/batches", list_batches, "Scoring batches, newest first", _TAGS,
              (json_reply(200, "A page of batches", Listing[ScoreBatch]),), query=BatchListQuery),
    Operation("GET", "/api/scores/batches/{batch_id}", get_batch, "A batch's status, progress and first errors", _TAGS,
              (json_reply(200, "The batch", ScoreBatch),), errors=(404,)),
    Operation("GET", "/api/scores/summary", summarize_scores,
              "Per score name: count, mean, pass rate, histogram, commonest labels and the worst traces", _TAGS,
              (json_reply(200, "One entry per score name", ScoreSummaries),), query=SummaryQuery),
    Operation("GET", "/api/scores", list_scores, "Scores, newest first", _TAGS,
              (json_reply(200, "A page of scores", Listing[Score]),), query=ScoreListQuery),
    Operation("POST", "/api/scores", create_score, "Record a manual or external score; refused for a trace the store does not hold",
              _TAGS, (json_reply(201, "The stored score", Score),), errors=(404,), body=ScoreInput, strict_json=False),
    Operation("GET", "/api/traces/{trace_id}/scores", trace_scores, "Scores of one trace", _TAGS,
              (json_reply(200, "A page of scores", TraceScores),), errors=(404,), query=TargetScoresQuery),
    Operation("GET", "/api/traces/{trace_id}/spans/{span_id}/scores", span_scores, "Scores of one span", _TAGS,
              (json_reply(200, "A page of scores", SpanScores),), errors=(404,), query=TargetScoresQuery),
]
