"""Who a write is made for: the API key's name, recorded as `created_by` on scores, items and runs.

The HTTP middleware sets it for the request (spanlake/api/auth_middleware.py); `Store.write`
carries the caller's context onto the writer thread, so a store function reads it with
`current_actor()` without every service function passing it along. Writes made by the server
itself (capture rules, background jobs without a requester) record NULL, as do servers without keys.
"""

from __future__ import annotations

from contextvars import ContextVar

_ACTOR: ContextVar[str | None] = ContextVar("spanlake_actor", default=None)


def current_actor() -> str | None:
    return _ACTOR.get()


def set_actor(name: str | None) -> object:
    """Set the actor for the current context; pass the result to `reset_actor` when done."""
    return _ACTOR.set(name)


def reset_actor(token: object) -> None:
    _ACTOR.reset(token)  # type: ignore[arg-type]
