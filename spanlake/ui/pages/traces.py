"""The traces page: newest traces first, quick filters that build a filter tree, paging.

Quick filters are only a way to write the filter language: each becomes one leaf, ANDed with
the advanced box, and the result goes through the same parser and `list_traces` as
`GET /api/traces`, so the page and the API can never disagree about what matches.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from spanlake.api.errors import ApiError
from spanlake.api.contract import parse_query
from spanlake.api.pagination import decode_cursor, encode_cursor
from spanlake.api.state import services_of
from spanlake.api.shapes.common import Paging
from spanlake.datasets.errors import DatasetError
from spanlake.api.traces import parse_filter_param
from spanlake.query.search import SearchParams, list_traces
from spanlake.ui.templating import render

TIME_RANGES = {"15m": dt.timedelta(minutes=15), "1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7)}
QUICK_FIELDS = ("service", "errors", "range", "min_duration", "model", "score", "score_op", "score_value", "filter")


@dataclass
class TraceQuery:
    """The page's query string, kept as text so the form shows exactly what the user typed."""

    values: dict[str, str]

    @classmethod
    def from_request(cls, request: Request) -> "TraceQuery":
        return cls({name: request.query_params.get(name, "").strip() for name in QUICK_FIELDS})

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def filter_tree(self) -> dict[str, Any] | None:
        """Quick filters and the advanced box as one filter tree (None when nothing is set)."""
        leaves: list[dict[str, Any]] = []
        if self.get("service"):
            leaves.append({"field": "service", "op": "eq", "value": self.get("service")})
        if self.get("errors"):
            leaves.append({"field": "status", "op": "eq", "value": "ERROR"})
        if self.get("min_duration"):
            leaves.append({"field": "duration_ms", "op": "gte", "value": _number("Min duration", self.get("min_duration"))})
        if self.get("model"):
            leaves.append({"field": "model", "op": "eq", "value": self.get("model")})
        if self.get("score"):
            op = self.get("score_op") or "lt"
            if op not in ("lt", "gt"):
                raise ApiError(400, "bad_request", "score comparison must be 'below' or 'above'")
            leaves.append({"field": f"score.{self.get('score')}", "op": op, "value": _number("Score value", self.get("score_value"))})
        if self.get("filter"):
            try:
                leaves.append(json.loads(self.get("filter")))
            except ValueError as exc:
                raise ApiError(400, "bad_request", f"filter is not valid JSON: {exc}") from None
            except RecursionError:
                raise ApiError(400, "bad_request", "filter is not valid JSON: nested too deeply") from None
        if not leaves:
            return None
        return leaves[0] if len(leaves) == 1 else {"and": leaves}

    def since(self) -> dt.datetime | None:
        span = TIME_RANGES.get(self.get("range"))
        return dt.datetime.now(dt.timezone.utc) - span if span else None

    def link(self, **changes: str) -> str:
        params = {k: v for k, v in {**self.values, **changes}.items() if v}
        return "/traces" + ("?" + urlencode(params) if params else "")


def _number(label: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{label} must be a number, got {raw!r}") from None


async def traces_page(request: Request) -> Response:
    query = TraceQuery.from_request(request)
    context: dict[str, Any] = {"q": query, "traces": [], "next_href": None, "error": None, "first_page": True, "time_ranges": list(TIME_RANGES)}
    try:
        tree = query.filter_tree()
        compiled, required = parse_filter_param(json.dumps(tree) if tree is not None else None, "trace")
        cursor_text = request.query_params.get("cursor")
        params = SearchParams(
            filter=compiled,
            required_scores=required,
            since=query.since(),
            limit=parse_query(Paging, request.query_params).limit,
            cursor=decode_cursor(cursor_text),
        )
        page = await services_of(request).store.read(list_traces, params)
    except (ApiError, DatasetError) as exc:
        context["error"] = exc.message
        return render(request, "traces.html", context, status_code=exc.status)
    except ValueError as exc:  # a cursor whose content does not parse
        context["error"] = str(exc)
        return render(request, "traces.html", context, status_code=400)
    context["traces"] = page.items
    context["first_page"] = cursor_text is None
    if page.next_cursor:
        context["next_href"] = query.link(cursor=encode_cursor(page.next_cursor))
    return render(request, "traces.html", context)
