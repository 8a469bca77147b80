"""`/openapi.json`, generated from the route declarations (api/contract.py) and their models.

Nothing here describes a route: paths, parameters and schemas all come from the `Operation`s and
the pydantic models they name (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). What is added
is what every route shares: the error shape and the statuses the middleware answers for all of
them (unknown query parameters 400, keys 401/403, body limits 413).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse

import spanlake
from spanlake.api.contract import Operation, Prefixed, marked
from spanlake.api.shapes.common import PATH_PARAMETERS, ErrorBody

_REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Invalid input",
    401: "Missing or invalid API key",
    403: "The key lacks the scope this route needs (error code permission_denied, missing_scope)",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Unprocessable input",
    503: "Unavailable; retry later",
}


class _Plain(GenerateJsonSchema):
    """No generated per-field titles: the field name already says it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _is_model(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, BaseModel)


class _Schemas:
    """Schemas of every model the operations name, generated together so shared ones appear once."""

    def __init__(self, operations: list[Operation]):
        wanted: dict[tuple[type[BaseModel], str], None] = {(ErrorBody, "serialization"): None}
        for op in operations:
            if op.body is not None:
                wanted[(op.body, "validation")] = None
            for shape in (op.raw_body or {}).values():
                if _is_model(shape):
                    wanted[(shape, "validation")] = None
            for reply in op.replies:
                for shape in reply.content.values():
                    if _is_model(shape):
                        wanted[(shape, "serialization")] = None
        refs, top = models_json_schema(list(wanted), ref_template=_REF, schema_generator=_Plain)
        self.refs = refs
        self.components: dict[str, Any] = dict(top.get("$defs", {}))

    def of(self, shape: Any, mode: str) -> dict[str, Any]:
        if _is_model(shape):
            return self.refs[(shape, mode)]
        schema = TypeAdapter(shape).json_schema(ref_template=_REF, mode=mode, schema_generator=_Plain)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        return schema

    def query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(ref_template=_REF, schema_generator=_Plain)
        self.components.update(schema.pop("$defs", {}))
        out = []
        for name, info in model.model_fields.items():
            key = info.alias or name
            prop = _without_null(dict(schema["properties"][key]))
            if marked(info, Prefixed):
                prop = {"type": "string"}
            description = prop.pop("description", None) or info.description
            out.append({"name": key, "in": "query", "required": info.is_required(), "schema": prop,
                        **({"description": description} if description else {})})
        return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a text: `str | None` is documented as its text."""
    branches = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if len(branches) == 1 and len(branches) < len(schema["anyOf"]):
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        return {**branches[0], **rest}
    return schema


def _error(status: int) -> dict[str, Any]:
    return {"description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}}}


def _statuses(op: Operation) -> list[int]:
    """Errors the operation declares, plus those the middleware may answer on it."""
    out = set(op.errors)
    if op.path.startswith("/api/"):
        out.add(400)  # unknown query parameters (api/query_guard.py)
    if op.scope is not None:
        out |= {401, 403}
    if op.body is not None or op.raw_body is not None:
        out |= {400, 413}
    return sorted(out)


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "description": PATH_PARAMETERS[name][0],
         "schema": schemas.of(PATH_PARAMETERS[name][1], "validation")}
        for name in (part[1:-1] for part in op.path.split("/") if part.startswith("{"))
    ]
    if op.query is not None:
        parameters += schemas.query_parameters(op.query)
    out: dict[str, Any] = {"summary": op.summary, "tags": list(op.tags), "operationId": f"{op.method.lower()}{op.path}"}
    if op.description:
        out["description"] = op.description
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas.of(op.body, "validation")}}}
    elif op.raw_body is not None:
        out["requestBody"] = {"required": True, "content": {
            media: {"schema": schemas.of(shape, "validation")} for media, shape in op.raw_body.items()}}
    responses: dict[str, Any] = {}
    for reply in op.replies:
        entry: dict[str, Any] = {"description": reply.description}
        if reply.content:
            entry["content"] = {media: {"schema": schemas.of(shape, "serialization")} for media, shape in reply.content.items()}
        responses[str(reply.status)] = entry
    for status in _statuses(op):
        responses.setdefault(str(status), _error(status))
    out["responses"] = responses
    if op.scope is not None:
        out["x-scope"] = op.scope
    return out


def build_document(operations: list[Operation]) -> dict[str, Any]:
    schemas = _Schemas(operations)
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "spanlake", "version": spanlake.__version__},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }


def openapi_endpoint(document: dict[str, Any]):
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    return openapi
