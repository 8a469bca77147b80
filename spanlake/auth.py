"""API keys: bearer tokens compared in constant time, never logged."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def key_fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key: what a UI session records instead of the key."""
    return hashlib.sha256(b"spanlake-key:" + key).hexdigest()[:16]


class KeyChecker:
    """Accepts `Bearer <key>` for any configured key; with no keys, everything is open."""

    def __init__(self, keys: Iterable[str]):
        self._keys = [k.encode() for k in keys if k]
        self._fingerprints = frozenset(key_fingerprint(k) for k in self._keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def session_secret(self) -> bytes:
        """Signs UI sessions. Derived from the keys, so replicas with one config share it and
        removing every key ends every session."""
        return hashlib.sha256(b"spanlake-ui-session\0" + b"\0".join(sorted(self._keys))).digest()

    def has_fingerprint(self, fingerprint: str) -> bool:
        return fingerprint in self._fingerprints

    def match(self, presented: str) -> str | None:
        """The fingerprint of the configured key equal to `presented`, or None."""
        token = presented.strip().encode()
        # Compare against every key, so timing reveals neither the key nor which one matched.
        found: bytes | None = None
        for key in self._keys:
            if hmac.compare_digest(token, key):
                found = key
        return key_fingerprint(found) if found is not None else None

    def allows(self, authorization: str | None) -> bool:
        if not self._keys:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return self.match(token) is not None
