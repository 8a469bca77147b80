"""Scorer, score and scoring batch routes.

The scoring component (spanlake/scoring/component.py) owns the scorer registry and runs the
batches; these handlers validate, hand over, and read back through spanlake/store/scores.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from spanlake.api import ids
from spanlake.api.body import read_json_object
from spanlake.api.errors import ApiError, bad_request, not_found
from spanlake.api.pagination import decode_cursor, encode_cursor, parse_limit
from spanlake.api.scores_openapi import OPENAPI_PATHS, OPENAPI_SCHEMAS
from spanlake.api.state import services_of
from spanlake.datasets import validate
from spanlake.datasets.errors import Invalid
from spanlake.clock import iso_from_datetime
from spanlake.scoring.base import ScoreResult, ScoringError
from spanlake.scoring.batches import KIND, BatchRequestError, parse_request
from spanlake.scoring.component import ScoringComponent
from spanlake.store.rule_scores import RULE_JOB_KIND
from spanlake.store import jobs
from spanlake.store import scores as score_store
from spanlake.store.score_summary import score_summary
from spanlake.store.trace_reads import known_traces
from spanlake.clock import utc_now

__all__ = ["OPENAPI_PATHS", "OPENAPI_SCHEMAS", "routes"]

SOURCES = ("eval", "api", "annotation", "rule")
MANUAL_SOURCES = ("api", "annotation")
JOB_STATUSES = (jobs.PENDING, jobs.RUNNING, jobs.COMPLETED, jobs.FAILED)


def _component(request: Request) -> ScoringComponent:
    return services_of(request).scoring


def _store(request: Request) -> Any:
    return services_of(request).store


def _keyset(request: Request) -> tuple[dt.datetime, str] | None:
    """The (created_at, id) a page continues after, from the opaque cursor."""
    state = decode_cursor(request.query_params.get("cursor"))
    if state is None:
        return None
    try:
        when = dt.datetime.fromisoformat(str(state["t"]).replace("Z", "+00:00")).replace(tzinfo=None)
        return when, str(state["id"])
    except (KeyError, ValueError):
        raise bad_request("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None


def _next_cursor(items: list[dict[str, Any]], limit: int, time_key: str, id_key: str) -> str | None:
    if len(items) < limit:
        return None
    return encode_cursor({"t": items[-1][time_key], "id": items[-1][id_key]})


def _number_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"{name} must be a number, got {raw!r}") from None
    if math.isnan(value):
        raise bad_request(f"{name} must be a number, got {raw!r}")
    return value


def _score_query(request: Request, **fixed: Any) -> score_store.ScoreQuery:
    q = request.query_params
    values: dict[str, Any] = {}
    for key in ("name", "scorer", "batch_id"):
        if q.get(key):
            values[key] = q[key]
    if q.get("trace_id"):
        values["trace_id"] = ids.trace_id(q["trace_id"])
    if q.get("span_id"):
        values["span_id"] = ids.span_id(q["span_id"])
    if q.get("item_id"):
        try:
            values["item_id"] = validate.text(q["item_id"], "item_id", max_len=100)
        except Invalid as exc:
            raise bad_request(exc.message) from None
    if q.get("source"):
        if q["source"] not in SOURCES:
            raise bad_request(f"source must be one of {', '.join(SOURCES)}, got {q['source']!r}")
        values["source"] = q["source"]
    values["min_value"] = _number_param(request, "min_value")
    values["max_value"] = _number_param(request, "max_value")
    values.update(fixed)
    return score_store.ScoreQuery(**values)


async def _score_page(request: Request, query: score_store.ScoreQuery, **extra: Any) -> JSONResponse:
    limit = parse_limit(request.query_params.get("limit"))
    before = _keyset(request)
    items = await _store(request).read(partial(score_store.list_scores, query=query, limit=limit, before=before))
    return JSONResponse({**extra, "items": items, "next_cursor": _next_cursor(items, limit, "created_at", "id")})


# Scorers ------------------------------------------------------------------------------------


async def list_scorers(request: Request) -> JSONResponse:
    return JSONResponse({"items": _component(request).registry.describe(), "next_cursor": None})


async def scorer_results(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    registry = _component(request).registry
    query = _score_query(request, scorer=name)
    threshold = _number_param(request, "pass_threshold")
    store = _store(request)
    stats = await store.read(partial(score_store.score_stats, query=query, pass_threshold=threshold))
    if stats["count"] == 0 and registry.get(name) is None:
        raise not_found(f"scorer {name!r} is not available and has no scores")
    limit = parse_limit(request.query_params.get("limit"))
    before = _keyset(request)
    items = await store.read(partial(score_store.list_scores, query=query, limit=limit, before=before))
    for item in items:
        item["trace_url"] = f"/api/traces/{item['trace_id']}" if item["trace_id"] else None  # run scores may have none
    return JSONResponse(
        {"scorer": name, "stats": stats, "items": items, "next_cursor": _next_cursor(items, limit, "created_at", "id")}
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise bad_request(f"{name} must be an integer from {low} to {high}, got {raw!r}")
    return value


def summary_params(request: Request) -> dict[str, Any]:
    """The query of GET /api/scores/summary (the scores page reads the same)."""
    return {
        "query": _score_query(request),
        "pass_threshold": _number_param(request, "pass_threshold"),
        "bins": _int_param(request, "bins", 10, 1, 50),
        "worst": _int_param(request, "worst", 5, 0, 50),
    }


async def summarize_scores(request: Request) -> JSONResponse:
    params = summary_params(request)
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


async def create_batch(request: Request) -> JSONResponse:
    component = _component(request)
    body = await read_json_object(request)
    try:
        batch = await asyncio.to_thread(parse_request, body, component.registry)  # 100k ids: ~0.2 s of CPU
        job, unknown = await component.submit(batch)
    except BatchRequestError as exc:
        raise ApiError(exc.status, exc.code, str(exc), **exc.extra) from None
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


async def list_batches(request: Request) -> JSONResponse:
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in JOB_STATUSES:
        raise bad_request(f"status must be one of {', '.join(JOB_STATUSES)}, got {status!r}")
    limit = parse_limit(q.get("limit"))
    before = _keyset(request)
    by_scorer = {"scorer": q["scorer"]} if q.get("scorer") else None
    found = await _store(request).read(
        partial(jobs.list_jobs, kind=KIND, limit=limit, status=status, before=before, param_equals=by_scorer)
    )
    items = [batch_json(j) for j in found]
    return JSONResponse({"items": items, "next_cursor": _next_cursor(items, limit, "created_at", "batch_id")})


# Scores -------------------------------------------------------------------------------------


def _manual_score(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a POST /api/scores body into a score row (identity fields included)."""
    allowed = {"trace_id", "span_id", "item_id", "name", "value", "label", "data_type", "source", "scorer",
               "explanation", "metadata"}
    unknown = set(body) - allowed
    if unknown:
        raise bad_request(f"{sorted(unknown)[0]}: unknown field; expected {', '.join(sorted(allowed))}")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise bad_request("name: required, a string of 1-200 characters")
    source = body.get("source", "api")
    if source not in MANUAL_SOURCES:
        raise bad_request(f"source must be one of {', '.join(MANUAL_SOURCES)}, got {source!r}")
    for key, limit in (("name", 200), ("label", 1000), ("scorer", 200), ("explanation", 10_000), ("data_type", 20)):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise bad_request(f"{key} must be a string of at most {limit} characters")
        if value is not None:  # JSON lets a string hold a lone surrogate, which the store cannot
            validate.text(value, key, max_len=limit, control_ok=True)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    raw = body.get("value")
    if raw is not None and not isinstance(raw, (bool, int, float)):
        raise bad_request(f"value must be a number or a boolean, got {type(raw).__name__}")
    try:
        value = raw if raw is None or isinstance(raw, bool) else float(raw)
        stored, data_type = ScoreResult(value, body.get("label"), data_type=body.get("data_type")).normalized()
    except (OverflowError, ScoringError) as exc:
        raise bad_request(f"value: {exc}") from None

    item_id = body.get("item_id")
    if item_id is not None:
        try:
            item_id = validate.text(item_id, "item_id", max_len=100)
        except Invalid as exc:
            raise bad_request(exc.message) from None
    if item_id is not None and body.get("trace_id") is None and body.get("span_id") is not None:
        raise bad_request("span_id needs its trace_id")
    trace = body.get("trace_id")
    return {
        "id": uuid.uuid4().hex,
        # An item's score may stand alone: items added by hand have no trace.
        "trace_id": None if item_id is not None and trace is None else ids.trace_id(trace),
        "span_id": None if body.get("span_id") is None else ids.span_id(body.get("span_id")),
        "item_id": item_id,
        "name": name,
        "value": stored,
        "label": body.get("label"),
        "data_type": data_type,
        "source": source,
        "scorer": body.get("scorer"),
        "explanation": body.get("explanation"),
        "metadata": None if metadata is None else validate.json_text(metadata, "metadata"),
        "created_at": utc_now(),
    }


async def create_score(request: Request) -> JSONResponse:
    row = _manual_score(await read_json_object(request))
    try:
        score = await _store(request).write(score_store.write_checked_score, row)
    except score_store.UnknownTrace:
        raise not_found(f"trace {row['trace_id']} is not in the store; only stored traces can be scored") from None
    except score_store.UnknownSpan:
        raise not_found(f"span {row['span_id']} is not in trace {row['trace_id']}") from None
    except score_store.UnknownItem:
        raise not_found(f"item {row['item_id']} is not a current item of any dataset") from None
    return JSONResponse(score, status_code=201)


async def list_scores(request: Request) -> JSONResponse:
    return await _score_page(request, _score_query(request))


async def trace_scores(request: Request) -> JSONResponse:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    if not await _store(request).read(known_traces, [trace_id]):
        raise not_found(f"trace {trace_id} not found")
    return await _score_page(request, _score_query(request, trace_id=trace_id), trace_id=trace_id)


async def span_scores(request: Request) -> JSONResponse:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    span_id = ids.span_id(request.path_params["span_id"])
    try:
        found = await _store(request).read(score_store.span_exists, trace_id, span_id)
    except score_store.UnknownTrace:
        found = False
    if not found:
        raise not_found(f"span {span_id} of trace {trace_id} not found")
    query = _score_query(request, trace_id=trace_id, span_id=span_id)
    return await _score_page(request, query, trace_id=trace_id, span_id=span_id)


def routes() -> list[Route]:
    return [
        Route("/api/scorers", list_scorers, methods=["GET"]),
        Route("/api/scorers/{name}/results", scorer_results, methods=["GET"]),
        Route("/api/scores/batch", create_batch, methods=["POST"]),
        Route("/api/scores/batches", list_batches, methods=["GET"]),
        Route("/api/scores/batches/{batch_id}", get_batch, methods=["GET"]),
        Route("/api/scores/summary", summarize_scores, methods=["GET"]),
        Route("/api/scores", list_scores, methods=["GET"]),
        Route("/api/scores", create_score, methods=["POST"]),
        Route("/api/traces/{trace_id}/scores", trace_scores, methods=["GET"]),
        Route("/api/traces/{trace_id}/spans/{span_id}/scores", span_scores, methods=["GET"]),
    ]
