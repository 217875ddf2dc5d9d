"""A URL checked and split into what the fetch needs: scheme, host, port, request line and Host header."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from pipelines.ingest.fetch.reasons import BLOCKED_SCHEME, CONNECTION_ERROR, FetchRefused

DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 sub-delims, ':' '@' and unreserved stay; '%' stays so existing escapes are not escaped twice.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_BAD_HOST_CHARS = set(" \t\r\n\x00/\\?#@[]")


@dataclass(frozen=True)
class Target:
    """One http(s) URL, split; `host` is lower-case ASCII (IDNA) without brackets."""

    url: str
    scheme: str
    host: str
    port: int
    request_target: str
    host_header: str

    @property
    def origin(self) -> str:
        """`scheme://host[:port]`: the key robots.txt is cached under."""
        return f"{self.scheme}://{self.host_header}"

    @property
    def robots_url(self) -> str:
        """Where this origin's robots.txt lives."""
        return f"{self.origin}/robots.txt"


def _ascii_host(host: str) -> str:
    if any(c in _BAD_HOST_CHARS or ord(c) < 0x20 for c in host):
        raise FetchRefused(CONNECTION_ERROR, f"invalid host {host!r}")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as err:
        raise FetchRefused(CONNECTION_ERROR, f"invalid host {host!r}: {err}") from None


def parse_target(url: str) -> Target:
    """Split `url`; refuse anything but http/https (`blocked_scheme`) and malformed hosts (`connection_error`)."""
    if not isinstance(url, str) or not url.strip():
        raise FetchRefused(BLOCKED_SCHEME, "empty url")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise FetchRefused(CONNECTION_ERROR, f"malformed url: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise FetchRefused(BLOCKED_SCHEME, f"{scheme or 'no'} scheme in {url[:200]!r}")
    if not parts.hostname:
        raise FetchRefused(CONNECTION_ERROR, f"no host in {url[:200]!r}")
    if port == 0:
        raise FetchRefused(CONNECTION_ERROR, f"port 0 in {url[:200]!r}")
    host = _ascii_host(parts.hostname)
    default = DEFAULT_PORTS[scheme]
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port in (None, default) else f"{bracketed}:{port}"
    request_target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    return Target(url, scheme, host, port or default, request_target, host_header)
