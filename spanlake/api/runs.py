"""Dataset run routes: start (server- or client-side), post results, complete, cancel, read, compare.

Runs execute in the background (spanlake/runs/component.py); these handlers validate, store
and nudge it. `{run_id}` is a run id or its name (unique within the dataset).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spanlake.api.contract import Operation, Reply, json_reply
from spanlake.api.dataset_common import ref, store
from spanlake.api.errors import ApiError
from spanlake.api.pagination import created_before, created_cursor, cursor_integer, decode_cursor, encode_cursor
from spanlake.api.shapes.common import Listing
from spanlake.api.shapes.runs import CompareQuery, ResultsQuery, ResultsStored, Run, RunComparison, RunListQuery, RunResult
from spanlake.api.state import services_of
from spanlake.datasets import validate
from spanlake.runs import pricing, queries as run_queries, validate as run_validate
from spanlake.runs import service as run_service
from spanlake.runs.component import RunsComponent
from spanlake.datasets.errors import Invalid
from spanlake.outbound import OutboundPolicy, OutboundRefused


def _component(request: Request) -> RunsComponent:
    return services_of(request).runs


def run_ref(request: Request) -> str:
    return validate.text(request.path_params["run_id"], "run_id", max_len=validate.MAX_NAME)


def _describe_after(fn: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """A write function whose returned run is rendered in the same transaction."""
    def write(cur: Any, *args: Any) -> dict[str, Any]:
        return run_queries.describe(cur, fn(cur, *args))

    return write


def _check_scorers(request: Request, spec: run_validate.RunSpec) -> None:
    if not spec.scorers:
        return
    registry = _component(request).registry
    for n, name in enumerate(spec.scorers):
        if registry.get(name) is None:
            raise Invalid(f"scorers[{n}]: no scorer named {name!r}; GET /api/scorers lists the ready ones")


async def _check_outbound(request: Request, spec: run_validate.RunSpec) -> None:
    """Refuse a target the outbound policy would refuse at connect time, while the caller is here.

    The runner checks again on the address it connects to (a name may resolve differently
    later); a name that does not resolve now is left to that check."""
    if spec.target is None:
        return
    policy: OutboundPolicy = services_of(request).outbound
    url = httpx.URL(spec.target["url"])
    try:
        await policy.resolve(url)
    except OutboundRefused as exc:
        raise ApiError(400, "outbound_refused", f"target.url: {exc.message}", rule=exc.rule) from None
    except httpx.HTTPError:
        pass


async def create_run(request: Request, *, body: run_validate.NewRun) -> Response:
    component = _component(request)
    spec = run_validate.run_spec(body)
    _check_scorers(request, spec)
    await _check_outbound(request, spec)
    run = await store(request).write(_describe_after(run_service.create_run), ref(request), spec)
    component.wake()
    return JSONResponse(run, status_code=202, headers={"Location": run["url"]})


def runs_cursor(key: tuple[str, str] | None) -> str | None:
    return created_cursor(*key) if key else None


def results_after(raw_cursor: str | None) -> int:
    """The seq a page of results continues after (-1: from the start)."""
    state = decode_cursor(raw_cursor, "seq")
    return cursor_integer(state["seq"]) if state else -1


def results_cursor(next_seq: int | None) -> str | None:
    return encode_cursor({"seq": next_seq}) if next_seq is not None else None


def compare_offset(raw_cursor: str | None) -> int:
    state = decode_cursor(raw_cursor, "o")
    offset = cursor_integer(state["o"]) if state else 0
    if offset < 0:
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged")
    return offset


def compare_cursor(next_offset: int | None) -> str | None:
    return encode_cursor({"o": next_offset}) if next_offset is not None else None


async def list_runs(request: Request, *, query: RunListQuery) -> Response:
    before = created_before(query.cursor)
    items, key = await store(request).read(run_queries.list_runs, ref(request), before, query.limit, query.summary)
    return JSONResponse({"items": items, "next_cursor": runs_cursor(key)})


def _pricing(request: Request) -> pricing.Pricing:
    return _component(request).pricing


async def get_run(request: Request) -> Response:
    run = await store(request).read(run_queries.get_run, ref(request), run_ref(request))
    pricing.price_summary(run["summary"], pricing.run_model(run), _pricing(request))
    return JSONResponse(run)


async def list_results(request: Request, *, query: ResultsQuery) -> Response:
    limit = query.limit
    dataset, run_name = ref(request), run_ref(request)
    status, after = query.status, results_after(query.cursor)

    def read(cur: Any) -> tuple[list[dict[str, Any]], int | None, dict[str, Any]]:
        rows, next_seq = run_queries.results_page(cur, dataset, run_name, status, after, limit)
        return rows, next_seq, run_queries.run_metadata(cur, dataset, run_name)

    rows, next_seq, metadata = await store(request).read(read)
    pricing.price_results(rows, pricing.run_model({"metadata": metadata}), _pricing(request))
    return JSONResponse({"items": rows, "next_cursor": results_cursor(next_seq)})


async def post_results(request: Request, *, body: run_validate.PostedResults) -> Response:
    rows = await asyncio.to_thread(run_validate.posted_results, body)  # up to 10k rows: off the event loop

    def write(cur: Any, dataset: str, run_ref: str) -> dict[str, Any]:
        out = run_service.post_results(cur, dataset, run_ref, rows)
        return {"accepted": out["accepted"], "run": run_queries.describe(cur, out["run"])}

    return JSONResponse(await store(request).write(write, ref(request), run_ref(request)))


async def complete_run(request: Request) -> Response:
    component = _component(request)
    run = await store(request).write(_describe_after(run_service.complete_run), ref(request), run_ref(request))
    component.wake()
    return JSONResponse(run, status_code=202)


async def cancel_run(request: Request) -> Response:
    run = await store(request).write(_describe_after(run_service.cancel_run), ref(request), run_ref(request))
    _component(request).cancelled(run["id"])
    return JSONResponse(run)


async def delete_run(request: Request) -> Response:
    await store(request).write(run_service.delete_run, ref(request), run_ref(request))
    return Response(status_code=204)


async def compare_runs(request: Request, *, query: CompareQuery) -> Response:
    raw = query.runs
    names = [validate.text(part.strip(), "runs", max_len=validate.MAX_NAME) for part in raw.split(",")]
    if len(names) != 2 or not all(names):
        raise Invalid(f"runs must name two runs, comma-separated: runs=a,b (ids or names), got {raw!r}")
    offset = compare_offset(query.cursor)
    out = await store(request).read(run_queries.compare, ref(request), names[0], names[1], offset, query.limit)
    prices = _pricing(request)
    for side in ("a", "b"):
        model = pricing.run_model(out[side])
        pricing.price_summary(out["summary"][side], model, prices)
        pricing.price_results([item[side] for item in out["items"] if item[side] is not None], model, prices)
    costs = [(out["summary"][side]["cost"] or {}).get("total") for side in ("a", "b")]
    out["summary"]["delta"]["cost"] = None if None in costs else costs[1] - costs[0]
    out["next_cursor"] = compare_cursor(out.pop("next_offset"))
    return JSONResponse(out)


_TAGS = ("runs",)
_RUNS = "/api/datasets/{dataset}/runs"
_ONE = _RUNS + "/{run_id}"
OPERATIONS = [
    Operation("GET", _RUNS, list_runs, "Runs of the dataset, newest first", _TAGS,
              (json_reply(200, "A page of runs", Listing[Run]),), errors=(404,), query=RunListQuery),
    Operation("POST", _RUNS, create_run,
              "Start a run: server-side with a target (202, runs in the background), or client-side without", _TAGS,
              (json_reply(202, "Accepted", Run),), errors=(404, 409, 503), body=run_validate.NewRun,
              description="A target URL the outbound policy (config `outbound.allow`) refuses is a 400 with "
                          "code `outbound_refused` and the refusing `rule`."),
    # Before {run_id}: "compare" is reserved.
    Operation("GET", _RUNS + "/compare", compare_runs,
              "Two runs side by side per item (regressions first) with summary deltas (b minus a)", _TAGS,
              (json_reply(200, "The comparison", RunComparison),), errors=(404,), query=CompareQuery),
    Operation("GET", _ONE, get_run,
              "One run with its summary: per-scorer mean and pass rate, latency p50/p95, tokens, errors", _TAGS,
              (json_reply(200, "The run", Run),), errors=(404,)),
    Operation("DELETE", _ONE, delete_run,
              "Delete a finished or cancelled run with its results and their scores (409 while it runs)", _TAGS,
              (Reply(204, "Deleted"),), errors=(404, 409)),
    Operation("GET", _ONE + "/results", list_results, "Results in item order, each with its scores", _TAGS,
              (json_reply(200, "A page of results", Listing[RunResult]),), errors=(404,), query=ResultsQuery),
    Operation("POST", _ONE + "/results", post_results,
              "Client-side runs: post results; posting an item again replaces its result", _TAGS,
              (json_reply(200, "Stored", ResultsStored),), errors=(404, 409), body=run_validate.PostedResults),
    Operation("POST", _ONE + "/complete", complete_run,
              "Client-side runs: no more results; unposted items become errors and scoring starts", _TAGS,
              (json_reply(202, "Scoring", Run),), errors=(404, 409)),
    Operation("POST", _ONE + "/cancel", cancel_run,
              "Cancel a run: nothing new is dispatched, calls in flight are recorded", _TAGS,
              (json_reply(200, "The run", Run),), errors=(404, 409)),
]
