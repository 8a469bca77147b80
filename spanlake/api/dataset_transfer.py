"""Moving items in and out of a dataset: capture from spans, import files, streamed export."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from spanlake.api.body import read_body
from spanlake.api.dataset_common import as_of, read_object, ref, store
from spanlake.datasets import capture, export, importer, service
from spanlake.datasets.errors import Invalid
from spanlake.clock import iso_from_datetime

IMPORT_LIMIT = 64 * 1024 * 1024  # the CLI splits bigger files into several imports


async def capture_spans(request: Request) -> Response:
    req = capture.parse_request(await read_object(request))
    st = store(request)
    dataset = await st.read(service.resolve, ref(request))  # 404 before any span is looked up
    selection = await st.read(capture.select_spans, req)
    result = await st.write(service.capture_keys, dataset["id"], selection.keys, req.options)
    return JSONResponse(
        {
            "captured": result.captured,
            "duplicates": result.duplicates,
            "matched": result.matched,
            "unknown_span_ids": selection.unknown_span_ids,
            "unknown_trace_ids": selection.unknown_trace_ids,
        }
    )


def _flag(request: Request, name: str) -> bool:
    raw = (request.query_params.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise Invalid(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


async def import_items(request: Request) -> Response:
    st = store(request)
    dataset = await st.read(service.resolve, ref(request))
    fmt = importer.format_of(request.headers.get("content-type"))
    dry_run = _flag(request, "dry_run")
    body = await read_body(request, IMPORT_LIMIT)
    # Parsing and validating a big file is CPU work: keep it off the event loop.
    items, rows = await asyncio.to_thread(importer.parse, fmt, body)
    if dry_run:
        return JSONResponse({"imported": 0, "valid": len(items), "dry_run": True})
    imported = await st.write(service.import_items, dataset["id"], items, rows)
    return JSONResponse({"imported": imported}, status_code=201)


async def export_items(request: Request) -> Response:
    fmt = export.parse_format(request.query_params.get("format"))
    at = as_of(request)
    st = store(request)
    dataset = await st.read(service.resolve, ref(request))
    if _flag(request, "report"):
        if fmt != "openai":
            raise Invalid("report=true goes with format=openai: it lists the items that make no fine-tuning example")
        report = await st.read(export.openai_report, dataset["id"], at)
        report["as_of"] = iso_from_datetime(report["as_of"])
        return JSONResponse(report)
    job = export.Export(dataset["id"], fmt, at)
    info = await st.read(job.start)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while (chunk := await st.read(job.next_chunk)) is not None:
                if chunk:
                    yield chunk
        finally:
            job.close()

    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename(dataset["name"], fmt)}"',
        "X-Spanlake-As-Of": iso_from_datetime(info["as_of"]) or "",
        "X-Spanlake-Item-Count": str(info["total"]),
    }
    if fmt == "openai":
        headers["X-Spanlake-Skipped-Items"] = str(info["skipped"])
    return StreamingResponse(chunks(), media_type=export.FORMATS[fmt].media_type, headers=headers)


def routes() -> list[Route]:
    base = "/api/datasets/{dataset}"
    return [
        Route(base + "/capture", capture_spans, methods=["POST"]),
        Route(base + "/import", import_items, methods=["POST"]),
        Route(base + "/export", export_items, methods=["GET"]),
    ]
