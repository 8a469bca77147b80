"""One declaration per route: its path, method, query model, body model and replies.

`api/app.py` lists every `Operation`; the Starlette routes, the checking of query parameters and
bodies, and `/openapi.json` (api/openapi.py) are all derived from that list, so the document
cannot drift from what the server accepts. A handler is `async def handler(request, *, query=...,
body=...)`, receiving the validated models its operation declares.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args, get_origin

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spanlake.api.body import DEFAULT_JSON_LIMIT, decode_object, read_body, require_json_media
from spanlake.auth import required_scope
from spanlake.validation import validated

if TYPE_CHECKING:
    from spanlake.services import Services

Handler = Callable[..., Awaitable[Response]]
# Bodies bigger than this are decoded and validated on a worker thread (10k items take ~50 ms).
OFF_LOOP_BYTES = 64 * 1024


class Prefixed:
    """Marks a query field that collects a family of parameters, `metadata.<key>=value`."""


class KeepBlank:
    """Marks a query field where an empty value means something (`topic=`: items without one)."""


@dataclass(frozen=True)
class Reply:
    """A documented response: its status and, per media type, the type its body has (none: no body)."""

    status: int
    description: str
    content: Mapping[str, Any] = field(default_factory=dict)


def json_reply(status: int, description: str, shape: Any) -> Reply:
    return Reply(status, description, {"application/json": shape})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler | None
    summary: str
    tags: tuple[str, ...]
    replies: tuple[Reply, ...]
    errors: tuple[int, ...] = ()
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    # Bodies a handler reads itself (OTLP, file imports): media type -> documented type.
    raw_body: Mapping[str, Any] | None = None
    # Strict JSON (no NaN, valid unicode) for bodies whose values reach the store as JSON text.
    strict_json: bool = True
    description: str | None = None
    # Handlers built per server (they hold its parts) instead of reading request.app.state.
    bind: Callable[["Services"], Handler] | None = None

    @property
    def scope(self) -> str | None:
        """The API-key scope it needs (spanlake/auth.py decides; documented from there)."""
        return required_scope(self.method, self.path, protect_metrics=True)

    def endpoint(self, services: "Services") -> Handler:
        handler = self.bind(services) if self.bind is not None else self.handler
        if handler is None:
            raise ValueError(f"{self.method} {self.path} declares neither a handler nor bind")
        if self.query is None and self.body is None:
            return handler
        query_model, body_model, strict = self.query, self.body, self.strict_json

        async def endpoint(request: Request) -> Response:
            kwargs: dict[str, Any] = {}
            if query_model is not None:
                kwargs["query"] = parse_query(query_model, request.query_params)
            if body_model is not None:
                require_json_media(request)
                raw = await read_body(request, DEFAULT_JSON_LIMIT)
                if len(raw) > OFF_LOOP_BYTES:
                    kwargs["body"] = await asyncio.to_thread(parse_body, body_model, raw, strict)
                else:
                    kwargs["body"] = parse_body(body_model, raw, strict)
            return await handler(request, **kwargs)

        return endpoint


def routes(operations: list[Operation], services: "Services") -> list[Route]:
    """Starlette routes in declaration order (a literal segment before a `{param}` one)."""
    return [Route(op.path, op.endpoint(services), methods=[op.method]) for op in operations]


def parse_body(model: type[BaseModel], raw: bytes, strict: bool) -> Any:
    return validated(model, decode_object(raw, strict=strict))


def marked(info: Any, marker: type) -> bool:
    return any(isinstance(m, marker) or m is marker for m in info.metadata)


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) in (list, tuple):
        return True
    return any(_is_list(a) for a in get_args(annotation))


def query_data(model: type[BaseModel], params: Any) -> dict[str, Any]:
    """The raw values of `model`'s fields from a multi-valued query mapping (Starlette's QueryParams).

    An empty value counts as absent (`limit=`), unless the field says it means something."""
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if marked(info, Prefixed):
            stem = key.split("<", 1)[0]
            family = {k[len(stem):]: params.getlist(k) for k in dict.fromkeys(params.keys()) if k.startswith(stem)}
            if family:
                data[key] = family
        elif _is_list(info.annotation):
            values = params.getlist(key)
            if values:
                data[key] = values
        elif key in params and (params[key] != "" or marked(info, KeepBlank)):
            data[key] = params[key]
    return data


def parse_query(model: type[BaseModel], params: Any) -> Any:
    """The validated query model (pages call it on their own URL, so they read parameters alike)."""
    return validated(model, query_data(model, params))
