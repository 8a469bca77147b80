"""API keys and scopes: who a bearer key belongs to, and which scope each route needs.

Both questions live here, as plain functions, so every entry point asks them the same way: the
HTTP middleware (`api/auth_middleware.py`), the OTLP/gRPC handler, and the web UI's sessions
(a session cookie names its key by fingerprint; `KeyRing.by_fingerprint` gives its principal).

- `KeyRing.identify(key) -> Principal | None`: the key's owner, or None for an unknown key.
  Keys are held only as SHA-256 digests and compared in constant time against every entry, so
  timing reveals neither the key nor which entry matched. A key is never logged or returned.
- `required_scope(method, path) -> str | None`: None for open routes, `AUTHENTICATED` for routes
  any valid key may call (`/api/whoami`), else one of SCOPES. The table is in the docstring of
  that function and in SECURITY.md.
- `authorize(ring, authorization, method, path) -> Principal | None` (or `permit(principal, ...)`
  for a caller already identified), raising `Unauthenticated` (401 / UNAUTHENTICATED) or
  `PermissionDenied` (403 / PERMISSION_DENIED, naming the missing scope).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spanlake.settings import Settings, SettingsError

log = logging.getLogger(__name__)

INGEST, READ, WRITE = "ingest", "read", "write"
SCOPES = (INGEST, READ, WRITE)
AUTHENTICATED = "authenticated"  # a pseudo-scope every valid key has (whoami)

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/favicon.ico"})
# Pages a browser must reach before it has a session (the UI's login form and its assets).
OPEN_PAGES = frozenset({"/login", "/logout"})
OPEN_PAGE_PREFIX = "/static/"
OTLP_PATHS = frozenset({"/v1/traces", "/v1/logs", "/v1/metrics"})
GRPC_EXPORT_SCOPE = INGEST
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's configured name and its scopes. Never holds the key itself."""

    name: str
    scopes: frozenset[str]

    def can(self, scope: str | None) -> bool:
        return scope is None or scope == AUTHENTICATED or scope in self.scopes


# The caller on a server without keys: everything is open, and nothing is attributed to anyone.
ANONYMOUS = Principal("anonymous", frozenset(SCOPES))


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes  # sha256 of the key
    scopes: frozenset[str]
    # The key itself when known (not for key_sha256 entries): signs UI sessions. Never shown.
    secret: bytes | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        """A short, non-secret name for the key: what a UI session cookie records instead of it."""
        return key_fingerprint(self.digest)


def key_fingerprint(digest: bytes) -> str:
    return hashlib.sha256(b"spanlake-key:" + digest).hexdigest()[:16]


class AuthError(Exception):
    status = 401
    code = "unauthenticated"
    grpc_code_name = "UNAUTHENTICATED"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unauthenticated(AuthError):
    pass


class PermissionDenied(AuthError):
    status = 403
    code = "permission_denied"
    grpc_code_name = "PERMISSION_DENIED"

    def __init__(self, principal: Principal, scope: str, what: str):
        super().__init__(
            f"key {principal.name!r} lacks the {scope!r} scope that {what} needs "
            f"(it has: {', '.join(sorted(principal.scopes)) or 'none'})"
        )
        self.missing_scope = scope
        self.principal = principal


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """Every configured key; with none, the server is open and every caller is ANONYMOUS."""

    def __init__(self, keys: Iterable[ApiKey]):
        self._keys = list(keys)
        self._by_fingerprint = {k.fingerprint: k for k in self._keys}
        secrets_known = sorted(k.secret for k in self._keys if k.secret)
        # UI sessions are signed with a secret derived from the keys, so replicas with one config
        # share it and removing every key ends every session. key_sha256 entries are public
        # digests, so only real keys go in; with none, a random secret (sessions end at restart).
        self._session_secret = hashlib.sha256(
            b"spanlake-ui-session\0" + (b"\0".join(secrets_known) if secrets_known else os.urandom(32))
        ).digest()

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str]) -> "KeyRing":
        """`--api-key` / SPANLAKE_API_KEY keys (every scope) plus the config file's `api_keys:` entries."""
        keys = [ApiKey(f"api-key-{n}", _digest(k), frozenset(SCOPES), k.encode())
                for n, k in enumerate(settings.api_keys, 1) if k]
        keys += parse_scoped_keys(settings.scoped_keys, env, taken={k.name for k in keys})
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, key: str) -> Principal | None:
        """The key's owner, or None. Checks every entry so the time taken says nothing."""
        found = self._entry(key)
        return None if found is None else Principal(found.name, found.scopes)

    def _entry(self, key: str) -> ApiKey | None:
        presented = _digest(key.strip())
        found: ApiKey | None = None
        for entry in self._keys:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry
        return found

    # UI sessions (spanlake/ui/sessions.py) name a key by its fingerprint, never by the key.

    def match(self, presented: str) -> str | None:
        """The fingerprint of the configured key equal to `presented` (a login form's key), or None."""
        found = self._entry(presented)
        return None if found is None else found.fingerprint

    def has_fingerprint(self, fingerprint: str) -> bool:
        return fingerprint in self._by_fingerprint

    def by_fingerprint(self, fingerprint: str) -> Principal | None:
        """The owner of the key a session signed in with; None once that key is gone."""
        entry = self._by_fingerprint.get(fingerprint)
        return None if entry is None else Principal(entry.name, entry.scopes)

    def session_secret(self) -> bytes:
        return self._session_secret

    def from_authorization(self, authorization: str | None) -> Principal | None:
        """The owner of an `authorization: Bearer <key>` header value; ANONYMOUS with no keys."""
        if not self._keys:
            return ANONYMOUS
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.identify(token.strip())

    def allows(self, authorization: str | None) -> bool:
        return self.from_authorization(authorization) is not None


def required_scope(method: str, path: str, *, protect_metrics: bool = False) -> str | None:
    """The scope a request needs. None: open to anyone.

    | route | needs |
    | --- | --- |
    | `/healthz`, `/readyz`, `/openapi.json`; `/metrics` unless protected | nothing |
    | `/login`, `/logout`, `/static/*` (UI sign-in and its assets) | nothing |
    | `POST /v1/traces`, `POST /v1/logs` (and gRPC `TraceService/Export`, `LogsService/Export`) | `ingest` |
    | `GET /api/whoami` | any valid key |
    | `GET`/`HEAD` under `/api/`, `/metrics` when protected | `read` |
    | any other method under `/api/` | `write` |
    | other `GET`/`HEAD` (web UI pages) | `read` |
    | other methods (web UI form posts) | `write` |
    """
    method = method.upper()
    if path in OPEN_PATHS:
        return None
    if path == "/metrics":
        return READ if protect_metrics else None
    if path in OTLP_PATHS:
        return INGEST
    if path == "/api/whoami":
        return AUTHENTICATED
    if path.rstrip("/") in OPEN_PAGES or path.startswith(OPEN_PAGE_PREFIX):
        return None
    return READ if method in SAFE_METHODS else WRITE


def authorize(ring: KeyRing, authorization: str | None, method: str, path: str, *, protect_metrics: bool = False) -> Principal | None:
    """The caller of this request, or AuthError; None for an open route (no caller needed)."""
    return permit(ring.from_authorization(authorization), method, path, protect_metrics=protect_metrics)


def permit(principal: Principal | None, method: str, path: str, *, protect_metrics: bool = False) -> Principal | None:
    """`authorize` for a caller already identified (None: nobody), e.g. by a UI session."""
    scope = required_scope(method, path, protect_metrics=protect_metrics)
    if scope is None:
        return None
    return require(principal, scope, f"{method.upper()} {path}")


def check(ring: KeyRing, authorization: str | None, scope: str, what: str) -> Principal:
    """The caller if its key has `scope`; `what` names the request in the 403 message."""
    return require(ring.from_authorization(authorization), scope, what)


def require(principal: Principal | None, scope: str, what: str) -> Principal:
    if principal is None:
        raise Unauthenticated("missing or invalid 'authorization: Bearer <key>'")
    if not principal.can(scope):
        raise PermissionDenied(principal, scope, what)
    return principal


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}\Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_ENTRY_FIELDS = ("name", "key_env", "key_sha256", "key", "scopes")


def parse_scoped_keys(entries: Iterable[Any], env: Mapping[str, str], *, taken: Iterable[str] = ()) -> list[ApiKey]:
    """The config file's `api_keys:` mappings; errors name `api_keys[i].field` as written."""
    names = set(taken)
    keys: list[ApiKey] = []
    for n, raw in enumerate(entries):
        where = f"api_keys[{n}]"
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{where}: expected a mapping with name, scopes and key_env or key_sha256")
        unknown = sorted(set(raw) - set(_ENTRY_FIELDS))
        if unknown:
            raise SettingsError(f"{where}.{unknown[0]}: unknown key; expected one of {', '.join(_ENTRY_FIELDS)}")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise SettingsError(f"{where}.name: expected a name of letters, digits and _ . : @ -, got {name!r}")
        if name in names:
            raise SettingsError(f"{where}.name: {name!r} is used twice (names appear in created_by and logs)")
        names.add(name)
        where = f"api_keys[{n}] ({name})"
        sources = [f for f in ("key_env", "key_sha256", "key") if raw.get(f) is not None]
        if len(sources) != 1:
            raise SettingsError(f"{where}: give exactly one of key_env, key_sha256 or key")
        digest, secret = _entry_digest(raw, sources[0], where, env)
        keys.append(ApiKey(name, digest, _scopes(raw.get("scopes"), where), secret))
    return keys


def _entry_digest(raw: Mapping[str, Any], source: str, where: str, env: Mapping[str, str]) -> tuple[bytes, bytes | None]:
    """(sha256 of the key, the key when known)."""
    value = raw[source]
    if not isinstance(value, str):
        raise SettingsError(f"{where}.{source}: expected a string")
    if source == "key_env":
        key = env.get(value, "")
        if not key.strip():
            raise SettingsError(f"{where}.key_env: environment variable {value} is not set or empty")
        return _digest(key.strip()), key.strip().encode()
    if source == "key_sha256":
        if not _HEX64.match(value):
            raise SettingsError(f"{where}.key_sha256: expected 64 hex digits (sha256sum of the key)")
        return bytes.fromhex(value), None
    if len(value) < 16:
        raise SettingsError(f"{where}.key: a key needs at least 16 characters")
    log.warning("%s: the key is written in the config file; prefer key_env or key_sha256", where)
    return _digest(value), value.encode()


def _scopes(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise SettingsError(f"{where}.scopes: expected a non-empty list among {', '.join(SCOPES)}")
    unknown = sorted(set(raw) - set(SCOPES))
    if unknown:
        raise SettingsError(f"{where}.scopes: {unknown[0]!r} is not a scope; expected {', '.join(SCOPES)}")
    return frozenset(raw)
