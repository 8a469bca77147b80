"""The outbound request policy for URLs that arrive through the API (dataset run targets today).

Any key holder who may start a run names a URL the server will call, so without a policy a key
is a way to reach whatever the server can reach: cloud metadata endpoints, internal services.
URLs from the config file (LLM judge endpoints, HTTP scorers) are the operator's and not checked.

```yaml
outbound:
  allow:                       # globs over scheme://host:port/path; the default is loopback only
    - "https://agents.internal.example.com/*"
    - "http://10.0.3.*:8080/*"
```

A pattern is `scheme://host[:port][/path]`: `*` in the scheme, host or port matches within that
part only (so `*.example.com` never matches `example.com.evil.net`), `*` in the path matches
anything; no port means the scheme's default port; no path means any path.

A URL is allowed when it matches an entry as written AND the address it is sent to passes:

- a public address: nothing more;
- a loopback, private or other non-public address: the URL with that address as its host
  (`http://10.0.3.7:8080/run`) must match an entry too;
- a link-local (169.254.0.0/16, fe80::/10) or metadata address: must match an entry whose host
  has no wildcard, i.e. be listed explicitly.

The check runs on the address actually connected to: `PolicyTransport` resolves the name once,
checks what it got and connects to that address (TLS still verifies the name), so a DNS answer
that changes between a check and the connection (rebinding) cannot slip past. Redirects go
through the same transport, hop by hop.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from spanlake.config_section import SettingsError, parse_section

RESOLVE_TIMEOUT_S = 10.0
DEFAULT_ALLOW = ("*://localhost:*", "*://127.0.0.1:*", "*://[::1]:*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATTERN = re.compile(r"(?P<scheme>[a-z*]+)://(?P<host>\[[0-9a-fA-F:.*]+\]|[^/:\[\]]+)(?::(?P<port>[0-9*]+))?(?P<path>/.*)?\Z")
# Cloud instance metadata services outside the link-local ranges (AWS IPv6, Alibaba Cloud).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(Exception):
    """A URL the policy does not allow; the message says which rule refused it."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.message = message
        self.rule = rule


@dataclass(frozen=True)
class Pattern:
    text: str
    scheme: str
    host: str
    port: str
    path: str

    @property
    def explicit_host(self) -> bool:
        return "*" not in self.host

    def matches(self, scheme: str, host: str, port: int, path: str) -> bool:
        return all(_glob(g).match(v) for g, v in ((self.scheme, scheme), (self.host, host), (self.port, str(port)), (self.path, path)))


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """Only `*` is special (fnmatch would read an IPv6 host's brackets as a character class)."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z", re.DOTALL)


def parse_pattern(text: Any, where: str) -> Pattern:
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise SettingsError(f"{where}: expected a glob like 'https://host.example.com:443/path/*', got {text!r}")
    scheme, host = match["scheme"], match["host"].lower()
    port = match["port"] or str(_DEFAULT_PORTS.get(scheme, "*"))
    return Pattern(text, scheme, host, port, match["path"] or "*")


def _host_text(address: Address) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


def _guard(address: Address) -> str | None:
    """None for a public address, else the class the policy must allow explicitly."""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address in METADATA_ADDRESSES:
        return "link-local/metadata"
    if address.is_loopback:
        return "loopback"
    if not address.is_global:
        return "private"
    return None


@dataclass(frozen=True)
class OutboundConfig:
    """The `outbound:` section as written: URL globs, parsed into patterns by OutboundPolicy."""

    allow: tuple[str, ...] = DEFAULT_ALLOW


@dataclass(frozen=True)
class OutboundPolicy:
    patterns: tuple[Pattern, ...]

    @classmethod
    def from_sections(cls, sections: Mapping[str, Any]) -> "OutboundPolicy":
        """The config file's `outbound:` section; errors name the key as written."""
        config = parse_section(sections.get("outbound"), OutboundConfig, "outbound")
        return cls(tuple(parse_pattern(p, f"outbound.allow[{n}]") for n, p in enumerate(config.allow)))

    @property
    def allow_text(self) -> str:
        return ", ".join(p.text for p in self.patterns) or "nothing"

    def check_name(self, url: httpx.URL) -> None:
        """The URL as written must match an entry."""
        scheme, host, port, path = _parts(url)
        if not any(p.matches(scheme, host, port, path) for p in self.patterns):
            raise OutboundRefused(
                f"{scheme}://{host}:{port}{path} matches no outbound.allow entry (allowed: {self.allow_text})",
                "outbound.allow",
            )

    def check_address(self, url: httpx.URL, address: Address) -> None:
        """The address the URL's host resolved to, connected to in its place."""
        guard = _guard(address)
        if guard is None:
            return
        scheme, host, port, path = _parts(url)
        shown = _host_text(address)
        explicit = guard == "link-local/metadata"
        for p in self.patterns:
            if (p.explicit_host or not explicit) and p.matches(scheme, shown, port, path):
                return
        listed = "listed with no wildcard in its host" if explicit else "listed"
        what = f"{host} is" if host == shown else f"{host} resolves to {address},"
        raise OutboundRefused(
            f"{what} a {guard} address; outbound.allow must list "
            f"{scheme}://{shown}:{port} ({listed}) to call it",
            f"outbound.{guard}",
        )

    async def resolve(self, url: httpx.URL) -> Address:
        """Check the URL and pick the address to connect to: the first resolved one that passes."""
        self.check_name(url)
        scheme, host, port, _ = _parts(url)
        try:
            addresses = await asyncio.wait_for(_resolve(url.host, port), RESOLVE_TIMEOUT_S)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"cannot resolve {url.host} within {RESOLVE_TIMEOUT_S:g}s") from None
        first_refusal: OutboundRefused | None = None
        for address in addresses:
            try:
                self.check_address(url, address)
                return address
            except OutboundRefused as exc:
                first_refusal = first_refusal or exc
        assert first_refusal is not None
        raise first_refusal


def _parts(url: httpx.URL) -> tuple[str, str, int, str]:
    host = url.host.lower()
    if ":" in host:
        host = f"[{host}]"
    return url.scheme, host, url.port or _DEFAULT_PORTS.get(url.scheme, 0), url.path or "/"


async def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    seen: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in seen:
            seen.append(address)
    if not seen:
        raise httpx.ConnectError(f"cannot resolve {host}: no addresses")
    return seen


class PolicyTransport(httpx.AsyncBaseTransport):
    """Sends each request (each redirect hop too) to an address the policy checked just now."""

    def __init__(self, policy: OutboundPolicy, inner: httpx.AsyncBaseTransport):
        self.policy = policy
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        address = await self.policy.resolve(url)
        # The Host header was set from the name when the request was built; TLS verifies the
        # certificate against the name too (httpcore's sni_hostname), only the socket uses the IP.
        # A new request: the client keeps the original one to resolve relative redirects against.
        extensions = {**request.extensions, "sni_hostname": url.host} if url.scheme == "https" else request.extensions
        pinned = httpx.Request(
            request.method, url.copy_with(host=str(address)), headers=request.headers, stream=request.stream,
            extensions=extensions,
        )
        return await self.inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self.inner.aclose()
