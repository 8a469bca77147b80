"""Unknown query parameters are refused with 400 naming them, as unknown body fields are.

The OpenAPI document, generated from each route's query model (api/contract.py), lists its
parameters: this middleware reads the allowed names from it, so a parameter the docs do not list
is never silently ignored (`?limt=5` answering a default-sized page) and a documented one is
always accepted. A name like `metadata.<key>` allows every parameter with that prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from spanlake.api.errors import error_response


@dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    names: frozenset[str]
    prefixes: tuple[str, ...]

    def unknown(self, given: list[str]) -> list[str]:
        return sorted({n for n in given if n not in self.names and not n.startswith(self.prefixes)})


def _operations(document: dict[str, Any]) -> list[_Operation]:
    out = []
    for template, ops in document["paths"].items():
        if not template.startswith("/api/"):
            continue
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in ops.items():
            declared = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            names = frozenset(n for n in declared if "<" not in n)
            prefixes = tuple(n.split("<", 1)[0] for n in declared if "<" in n)
            out.append(_Operation(method.upper(), template, pattern, names, prefixes))
    # Literal segments before parameters: /runs/compare must win over /runs/{run_id}.
    out.sort(key=lambda op: op.template.count("{"))
    return out


class RefuseUnknownQueryParameters:
    """ASGI middleware for /api/* routes; others (pages, OTLP) pass through untouched."""

    def __init__(self, app: ASGIApp, *, document: dict[str, Any]):
        self.app = app
        self.operations = _operations(document)

    def _operation(self, method: str, path: str) -> _Operation | None:
        method = "GET" if method == "HEAD" else method
        for op in self.operations:
            if op.method == method and op.pattern.match(path):
                return op
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/") and scope.get("query_string"):
            op = self._operation(scope["method"], scope["path"])
            if op is not None:
                given = [name for name, _ in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)]
                unknown = op.unknown(given)
                if unknown:
                    accepted = sorted(op.names) + [f"{p}<key>" for p in op.prefixes]
                    takes = ", ".join(accepted) if accepted else "no query parameters"
                    plural = "s" if len(unknown) > 1 else ""
                    response = error_response(
                        400,
                        "bad_request",
                        f"unknown query parameter{plural} {', '.join(unknown)}; {op.method} {op.template} takes {takes}",
                        unknown_parameters=unknown,
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
