"""One table from ingest outcome to gRPC code, HTTP status and retry hint.

OTLP says which failures a client may retry (https://opentelemetry.io/docs/specs/otlp/#failures):
retryable ones carry a delay (gRPC RetryInfo, HTTP Retry-After); permanent ones must not be retried.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class _Mapping:
    grpc_code: grpc.StatusCode
    http_status: int
    error_code: str
    retryable: bool


class Outcome(enum.Enum):
    INVALID = _Mapping(grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_argument", False)
    TOO_LARGE = _Mapping(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, "too_large", False)
    UNSUPPORTED_MEDIA = _Mapping(grpc.StatusCode.INVALID_ARGUMENT, 415, "unsupported_media_type", False)
    UNAUTHENTICATED = _Mapping(grpc.StatusCode.UNAUTHENTICATED, 401, "unauthenticated", False)
    PERMISSION_DENIED = _Mapping(grpc.StatusCode.PERMISSION_DENIED, 403, "permission_denied", False)
    QUEUE_FULL = _Mapping(grpc.StatusCode.RESOURCE_EXHAUSTED, 503, "queue_full", True)
    SHUTTING_DOWN = _Mapping(grpc.StatusCode.UNAVAILABLE, 503, "shutting_down", True)
    STORE_FAILED = _Mapping(grpc.StatusCode.UNAVAILABLE, 503, "store_unavailable", True)

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return self.value.grpc_code

    @property
    def http_status(self) -> int:
        return self.value.http_status

    @property
    def error_code(self) -> str:
        return self.value.error_code

    @property
    def retryable(self) -> bool:
        return self.value.retryable


class IngestError(Exception):
    """A request that was not stored; `outcome` tells the client what to do next."""

    def __init__(self, outcome: Outcome, message: str, retry_after_seconds: float = 1.0):
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.retry_after_seconds = retry_after_seconds
