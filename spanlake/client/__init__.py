"""spanlake's Python client: `Client` (blocking) and `AsyncClient` (awaited), one surface.

Imports httpx only (rich when a progress bar is drawn, OpenTelemetry and pandas when used), never
the server's dependencies, so a CI job or notebook pays nothing for them. See docs/client.md.
"""

from spanlake.client.client import AsyncClient, Client
from spanlake.client.errors import SpanlakeError, ThresholdError
from spanlake.client.models import (
    BatchStatus, Capture, Comparison, Dataset, Item, Run, RunResult, Score, Span, Trace, TraceSummary,
)
from spanlake.client.pages import Pages
from spanlake.client.scores import Batch

__all__ = [
    "AsyncClient", "Batch", "BatchStatus", "Capture", "Client", "Comparison", "Dataset", "Item", "Pages", "Run",
    "RunResult", "Score", "Span", "SpanlakeError", "ThresholdError", "Trace", "TraceSummary",
]
