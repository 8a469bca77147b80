"""UI login sessions: a signed, expiring cookie naming the key that logged in (never the key).

The cookie is `payload.mac`; the payload holds the key's fingerprint, an expiry and a random
nonce. Removing a key from the config ends its sessions (its fingerprint no longer matches);
logout ends one session at once by remembering its nonce until it would have expired anyway.
"""

from __future__ import annotations

import base64
import hmac
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass

from spanlake.auth import KeyRing

SESSION_COOKIE = "spanlake_session"
CSRF_COOKIE = "spanlake_csrf"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    fingerprint: str
    expires: float
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and checks session cookies for one server's configured keys."""

    def __init__(self, keys: KeyRing, *, lifetime: float = SESSION_SECONDS):
        self.keys = keys
        self.lifetime = lifetime
        self._secret = keys.session_secret()
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, fingerprint: str) -> str:
        body = {"f": fingerprint, "e": int(time.time() + self.lifetime), "n": secrets.token_urlsafe(12)}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, _, mac = cookie.partition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["f"]), float(body["e"]), str(body["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < time.time() or not self.keys.has_fingerprint(session.fingerprint):
            return None
        with self._lock:
            if session.nonce in self._revoked:
                return None
        return session

    def revoke(self, cookie: str | None) -> None:
        session = self.verify(cookie)
        if session is None:
            return
        now = time.time()
        with self._lock:
            self._revoked = {n: e for n, e in self._revoked.items() if e > now}
            self._revoked[session.nonce] = session.expires


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)
