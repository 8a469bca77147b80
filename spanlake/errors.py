"""The one base of every error a client caused or can act on.

Each carries its HTTP status, a stable code and a message that names what to change; the API
registers one handler for the base (api/errors.py), so no route converts errors itself.
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.headers = headers
        self.extra = extra
