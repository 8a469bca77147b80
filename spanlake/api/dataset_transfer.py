"""Moving items in and out of a dataset: capture from spans, import files, streamed export."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from spanlake.api.body import read_body
from spanlake.api.contract import Operation, Reply, json_reply
from spanlake.api.dataset_common import ref, store
from spanlake.api.shapes.datasets import CaptureResult, ExportQuery, ImportChecked, Imported, ImportQuery, OpenAIReport
from spanlake.datasets import capture, export, importer, service, validate
from spanlake.datasets.errors import Invalid
from spanlake.clock import iso_from_datetime

IMPORT_LIMIT = 64 * 1024 * 1024  # the CLI splits bigger files into several imports


async def capture_spans(request: Request, *, body: capture.CaptureBody) -> Response:
    req = capture.parse_request(body)
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


async def import_items(request: Request, *, query: ImportQuery) -> Response:
    st = store(request)
    dataset = await st.read(service.resolve, ref(request))
    fmt = importer.format_of(request.headers.get("content-type"))
    body = await read_body(request, IMPORT_LIMIT)
    # Parsing and validating a big file is CPU work: keep it off the event loop.
    items, rows = await asyncio.to_thread(importer.parse, fmt, body)
    if query.dry_run:
        return JSONResponse({"imported": 0, "valid": len(items), "dry_run": True})
    imported = await st.write(service.import_items, dataset["id"], items, rows)
    return JSONResponse({"imported": imported}, status_code=201)


async def export_items(request: Request, *, query: ExportQuery) -> Response:
    fmt = query.format
    at = None if not query.as_of else validate.instant(query.as_of)
    st = store(request)
    dataset = await st.read(service.resolve, ref(request))
    if query.report:
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


_TAGS = ("datasets",)
_ONE = "/api/datasets/{dataset}"
_FILES = {"application/x-ndjson": bytes, "text/csv": bytes, "application/vnd.apache.parquet": bytes}
OPERATIONS = [
    Operation("POST", _ONE + "/capture", capture_spans,
              "Capture stored spans as items (a span already in the dataset counts as a duplicate)", _TAGS,
              (json_reply(200, "Counts", CaptureResult),), errors=(404,), body=capture.CaptureBody),
    Operation("POST", _ONE + "/import", import_items,
              "Import a JSON array, JSON Lines, CSV or Parquet file: every row valid, or nothing imported", _TAGS,
              (json_reply(201, "Imported", Imported), json_reply(200, "Dry run: all rows valid", ImportChecked)),
              errors=(404, 415, 422), query=ImportQuery,
              raw_body={"application/json": list[validate.ItemIn], **_FILES}),
    Operation("GET", _ONE + "/export", export_items,
              "Stream the items (current, or as_of an instant) as jsonl, csv, openai or parquet", _TAGS,
              (Reply(200, "The file; with format=openai&report=true, the report as JSON",
                     {**_FILES, "application/json": OpenAIReport}),),
              errors=(404,), query=ExportQuery),
]
