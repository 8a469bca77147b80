"""API keys: bearer tokens compared in constant time, never logged."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


class KeyChecker:
    """Accepts `Bearer <key>` for any configured key; with no keys, everything is open."""

    def __init__(self, keys: Iterable[str]):
        self._keys = [k.encode() for k in keys if k]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def allows(self, authorization: str | None) -> bool:
        if not self._keys:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        presented = token.strip().encode()
        # Compare against every key, so timing reveals neither the key nor which one matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(presented, key)
        return matched
