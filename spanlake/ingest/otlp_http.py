"""OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs`, protobuf or JSON, gzip or not; the answer
uses the request's encoding. One endpoint class serves every signal (ingest/signals.py).

Failures carry a google.rpc.Status body as the OTLP/HTTP spec asks (protobuf for protobuf
requests; for JSON requests the same fields plus our usual {"error": {...}} object).
"""

from __future__ import annotations

import json
import math

from google.rpc import status_pb2
from starlette.requests import Request
from starlette.responses import Response

from spanlake.bounded_body import BodyRefused, read_bounded
from spanlake.ingest.ack import IngestError, Outcome
from spanlake.ingest.receiver import Accepted, Encoding, Receiver, decompress
from spanlake.ingest.signals import TRACES, Signal
from spanlake.metrics import Metrics

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _encoding_of(content_type: str | None) -> Encoding:
    media = (content_type or "").split(";")[0].strip().lower()
    if media in (PROTOBUF, "application/protobuf"):
        return "protobuf"
    if media == JSON:
        return "json"
    raise IngestError(
        Outcome.UNSUPPORTED_MEDIA, f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}"
    )


def _success(decoded: Accepted, encoding: Encoding, signal: Signal) -> Response:
    if encoding == "json":
        body: dict = {}
        if decoded.rejected:
            body["partialSuccess"] = {signal.rejected_json: str(decoded.rejected), "errorMessage": decoded.error_message}
        return Response(json.dumps(body), media_type=JSON)
    return Response(signal.response_bytes(decoded.rejected, decoded.error_message), media_type=PROTOBUF)


def _failure(exc: IngestError, encoding: Encoding) -> Response:
    headers = {}
    if exc.outcome.retryable:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_seconds)))
    code = exc.outcome.grpc_code.value[0]
    if encoding == "protobuf":
        body = status_pb2.Status(code=code, message=exc.message).SerializeToString()
        return Response(body, status_code=exc.outcome.http_status, media_type=PROTOBUF, headers=headers)
    payload = {"code": code, "message": exc.message, "error": {"code": exc.outcome.error_code, "message": exc.message}}
    return Response(json.dumps(payload), status_code=exc.outcome.http_status, media_type=JSON, headers=headers)


def refusal(exc: IngestError, content_type: str | None) -> Response:
    """An OTLP/HTTP refusal in the request's own encoding (a google.rpc.Status for protobuf), for
    failures decided before the endpoint runs, such as a missing or wrong API key."""
    try:
        encoding = _encoding_of(content_type)
    except IngestError:
        encoding = "json"
    response = _failure(exc, encoding)
    if exc.outcome is Outcome.UNAUTHENTICATED:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


class OtlpHttpEndpoint:
    """The Starlette endpoint of one signal; one instance per signal and server."""

    def __init__(self, receiver: Receiver, metrics: Metrics, signal: Signal = TRACES):
        self._receiver = receiver
        self._metrics = metrics
        self.signal = signal

    async def handle(self, request: Request) -> Response:
        encoding: Encoding = "json"
        try:
            encoding = _encoding_of(request.headers.get("content-type"))
            limit = self._receiver.config.max_message_bytes
            try:
                raw = await read_bounded(request, limit)
            except BodyRefused as exc:
                raise IngestError(Outcome.TOO_LARGE if exc.too_large else Outcome.INVALID, exc.message) from None
            body = decompress(raw, request.headers.get("content-encoding"), limit)
            decoded = await self._receiver.accept(body, encoding, self.signal)
        except IngestError as exc:
            self._metrics.requests.labels("http", exc.outcome.error_code).inc()
            return _failure(exc, encoding)
        self._metrics.requests.labels("http", "ok").inc()
        return _success(decoded, encoding, self.signal)
