"""Helpers shared by the dataset route modules: the store and the `{dataset}` path value."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from spanlake.api.state import services_of
from spanlake.datasets import validate


def store(request: Request) -> Any:
    return services_of(request).store


def ref(request: Request) -> str:
    """The `{dataset}` path parameter: an id or a name."""
    value = request.path_params["dataset"]
    return validate.text(value, "dataset", max_len=validate.MAX_NAME)
