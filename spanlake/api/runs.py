"""Dataset run routes: start (server- or client-side), post results, complete, cancel, read, compare.

Runs execute in the background (spanlake/runs/component.py); these handlers validate, store
and nudge it. `{run_id}` is a run id or its name (unique within the dataset).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spanlake.api.dataset_common import cursor, integer, read_object, ref, store
from spanlake.api.errors import ApiError
from spanlake.api.pagination import encode_cursor, parse_limit
from spanlake.api.runs_openapi import OPENAPI_PATHS, OPENAPI_SCHEMAS
from spanlake.api.state import services_of
from spanlake.datasets import validate
from spanlake.runs import pricing, queries as run_queries, validate as run_validate
from spanlake.runs import service as run_service
from spanlake.runs.component import RunsComponent
from spanlake.datasets.errors import Invalid
from spanlake.outbound import OutboundPolicy, OutboundRefused

__all__ = ["OPENAPI_PATHS", "OPENAPI_SCHEMAS", "routes"]

RESULT_STATUSES = ("pending", "ok", "error")


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


async def create_run(request: Request) -> Response:
    component = _component(request)
    spec = run_validate.run_spec(await read_object(request))
    _check_scorers(request, spec)
    await _check_outbound(request, spec)
    run = await store(request).write(_describe_after(run_service.create_run), ref(request), spec)
    component.wake()
    return JSONResponse(run, status_code=202, headers={"Location": run["url"]})


def _flag(request: Request, name: str) -> bool:
    raw = (request.query_params.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise Invalid(f"{name} must be true or false, got {request.query_params.get(name)!r}")
    return raw in ("true", "1")


def runs_before(request: Request) -> tuple[dt.datetime, str] | None:
    """The (created_at, id) a page of runs continues after, from its cursor."""
    state = cursor(request, "t", "id")
    if state is None:
        return None
    try:
        return dt.datetime.fromisoformat(str(state["t"])), str(state["id"])
    except ValueError:
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None


def runs_cursor(key: tuple[str, str] | None) -> str | None:
    return encode_cursor({"t": key[0], "id": key[1]}) if key else None


def result_status(request: Request) -> str | None:
    status = request.query_params.get("status") or None
    if status is not None and status not in RESULT_STATUSES:
        raise Invalid(f"status must be one of {', '.join(RESULT_STATUSES)}, got {status!r}")
    return status


def results_after(request: Request) -> int:
    """The seq a page of results continues after (-1: from the start)."""
    state = cursor(request, "seq")
    return integer(state["seq"]) if state else -1


def results_cursor(next_seq: int | None) -> str | None:
    return encode_cursor({"seq": next_seq}) if next_seq is not None else None


def compare_offset(request: Request) -> int:
    state = cursor(request, "o")
    offset = integer(state["o"]) if state else 0
    if offset < 0:
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged")
    return offset


def compare_cursor(next_offset: int | None) -> str | None:
    return encode_cursor({"o": next_offset}) if next_offset is not None else None


async def list_runs(request: Request) -> Response:
    limit = parse_limit(request.query_params.get("limit"))
    before = runs_before(request)
    with_summary = _flag(request, "summary")
    items, key = await store(request).read(run_queries.list_runs, ref(request), before, limit, with_summary)
    return JSONResponse({"items": items, "next_cursor": runs_cursor(key)})


def _pricing(request: Request) -> pricing.Pricing:
    return _component(request).pricing


async def get_run(request: Request) -> Response:
    run = await store(request).read(run_queries.get_run, ref(request), run_ref(request))
    pricing.price_summary(run["summary"], pricing.run_model(run), _pricing(request))
    return JSONResponse(run)


async def list_results(request: Request) -> Response:
    limit = parse_limit(request.query_params.get("limit"))
    dataset, run_name = ref(request), run_ref(request)
    status, after = result_status(request), results_after(request)

    def read(cur: Any) -> tuple[list[dict[str, Any]], int | None, dict[str, Any]]:
        rows, next_seq = run_queries.results_page(cur, dataset, run_name, status, after, limit)
        return rows, next_seq, run_queries.run_metadata(cur, dataset, run_name)

    rows, next_seq, metadata = await store(request).read(read)
    pricing.price_results(rows, pricing.run_model({"metadata": metadata}), _pricing(request))
    return JSONResponse({"items": rows, "next_cursor": results_cursor(next_seq)})


async def post_results(request: Request) -> Response:
    body = await read_object(request)
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


async def compare_runs(request: Request) -> Response:
    raw = request.query_params.get("runs") or ""
    names = [validate.text(part.strip(), "runs", max_len=validate.MAX_NAME) for part in raw.split(",")]
    if len(names) != 2 or not all(names):
        raise Invalid(f"runs must name two runs, comma-separated: runs=a,b (ids or names), got {raw!r}")
    limit = parse_limit(request.query_params.get("limit"))
    out = await store(request).read(run_queries.compare, ref(request), names[0], names[1], compare_offset(request), limit)
    prices = _pricing(request)
    for side in ("a", "b"):
        model = pricing.run_model(out[side])
        pricing.price_summary(out["summary"][side], model, prices)
        pricing.price_results([item[side] for item in out["items"] if item[side] is not None], model, prices)
    costs = [(out["summary"][side]["cost"] or {}).get("total") for side in ("a", "b")]
    out["summary"]["delta"]["cost"] = None if None in costs else costs[1] - costs[0]
    out["next_cursor"] = compare_cursor(out.pop("next_offset"))
    return JSONResponse(out)


def routes() -> list[Route]:
    runs = "/api/datasets/{dataset}/runs"
    return [
        Route(runs, list_runs, methods=["GET"]),
        Route(runs, create_run, methods=["POST"]),
        Route(runs + "/compare", compare_runs, methods=["GET"]),  # before {run_id}: "compare" is reserved
        Route(runs + "/{run_id}", get_run, methods=["GET"]),
        Route(runs + "/{run_id}", delete_run, methods=["DELETE"]),
        Route(runs + "/{run_id}/results", list_results, methods=["GET"]),
        Route(runs + "/{run_id}/results", post_results, methods=["POST"]),
        Route(runs + "/{run_id}/complete", complete_run, methods=["POST"]),
        Route(runs + "/{run_id}/cancel", cancel_run, methods=["POST"]),
    ]
