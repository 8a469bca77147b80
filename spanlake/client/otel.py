"""OpenTelemetry in the experimenting process, when there is one.

If `opentelemetry-api` is importable and the application set a real TracerProvider (an SDK one,
not the default no-op), each task call runs inside a span of its own trace; the trace and span
ids go with the result, so the spans the task makes (its LLM calls) hang under the result and
trace-aware scorers see them. Nothing here is imported unless OpenTelemetry is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from spanlake import __version__

SPAN_NAME = "spanlake.experiment.item"


def tracer() -> Any:
    """The process's tracer, or None when OpenTelemetry is absent or not configured."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer("spanlake.client", __version__)


@contextlib.contextmanager
def item_span(tracer: Any, attributes: dict[str, Any]) -> Iterator[Any]:
    """A new root span (its own trace) made current for the task call; yields None without a tracer."""
    if tracer is None:
        yield None
        return
    from opentelemetry import context

    # A fresh context: each item gets its own trace even when the caller is inside a span.
    with tracer.start_as_current_span(SPAN_NAME, context=context.Context(), attributes=attributes,
                                      record_exception=False, set_status_on_exception=False) as span:
        yield span


def ids(span: Any) -> tuple[str, str] | None:
    if span is None:
        return None
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def finish(span: Any, *, output: str | None = None, error: str | None = None) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error[:500]))
    elif output is not None:
        span.set_attribute("output.value", output)


def flush(timeout_s: float = 30.0) -> None:
    """Export the spans still buffered, so they are stored before the run is scored (blocking)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return
    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(int(timeout_s * 1000))
