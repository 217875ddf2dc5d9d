"""One HTTP GET on a connection pinned to a vetted address, under the fetch's deadline.

We connect to the address the guard vetted and send the name only as Host header and TLS SNI, so DNS is asked
once per hop and a rebinding answer cannot move the connection. http.client is used directly (no pool, no
proxies from the environment, no decompression): urllib would re-resolve, follow redirects unchecked and
read bodies without a cap.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl

from pipelines.ingest.fetch.address import AddressPolicy, IPAddress
from pipelines.ingest.fetch.deadline import Deadline, watchdog
from pipelines.ingest.fetch.reasons import (
    BLOCKED_PRIVATE_ADDRESS,
    CONNECTION_ERROR,
    IMAGE_TOO_LARGE_BYTES,
    FetchRefused,
)
from pipelines.ingest.fetch.target import Target

_CHUNK = 64 * 1024


def _failure(err: BaseException, deadline: Deadline, doing: str) -> FetchRefused:
    """The refusal for an exception raised while `doing`: a passed deadline wins, resets may be retried."""
    if deadline.expired() or isinstance(err, TimeoutError):
        return deadline.refusal(doing)
    detail = f"{doing}: {type(err).__name__}: {err}".rstrip(": ")
    return FetchRefused(CONNECTION_ERROR, detail, retryable=isinstance(err, ConnectionResetError))


def _declared_length(response: http.client.HTTPResponse) -> int | None:
    if "chunked" in (response.getheader("Transfer-Encoding") or "").lower():
        return None
    try:
        length = int(response.getheader("Content-Length") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


def _connect(target: Target, addresses: list[IPAddress], deadline: Deadline, policy: AddressPolicy) -> socket.socket:
    """A TCP connection to the first vetted address that answers; the peer is checked again once connected."""
    errors = []
    for ip in addresses:
        left = deadline.check(f"connecting to {target.host}")
        try:
            sock = socket.create_connection((str(ip), target.port), timeout=left)
        except OSError as err:
            if deadline.expired() or isinstance(err, TimeoutError):
                raise deadline.refusal(f"connecting to {target.host}") from None
            errors.append(f"{ip}: {err}")
            continue
        peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
        if peer != ip:
            sock.close()
            raise FetchRefused(BLOCKED_PRIVATE_ADDRESS, f"{target.host}: connected to {peer}, vetted {ip}")
        try:
            policy.check(target.host, peer)
        except FetchRefused:
            sock.close()
            raise
        return sock
    raise FetchRefused(CONNECTION_ERROR, f"cannot connect to {target.host}:{target.port}: {'; '.join(errors)}")


class Exchange:
    """A sent GET and its response headers; read the body with `read_body`, always `close()`."""

    def __init__(self, target: Target, deadline: Deadline) -> None:
        self.target = target
        self._deadline = deadline
        self._sock: socket.socket | None = None
        self._handle: int | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None

    @property
    def status(self) -> int:
        return self._response.status

    def header(self, name: str) -> str | None:
        """One response header (the first if repeated)."""
        return self._response.getheader(name)

    def header_values(self, name: str) -> list[str]:
        """Every value of a repeated response header."""
        return self._response.msg.get_all(name, [])

    def open(self, addresses: list[IPAddress], policy: AddressPolicy, tls: ssl.SSLContext, user_agent: str) -> None:
        """Connect, handshake, send the GET and read the status line and headers."""
        target, deadline = self.target, self._deadline
        sock = self._sock = _connect(target, addresses, deadline, policy)
        doing = f"talking to {target.host}"
        try:
            if target.scheme == "https":
                sock = self._sock = tls.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
            self._handle = watchdog().arm(sock, deadline.at)
            if target.scheme == "https":
                doing = f"TLS handshake with {target.host}"
                sock.settimeout(deadline.check(doing))
                sock.do_handshake()
                doing = f"talking to {target.host}"
            self._conn = http.client.HTTPConnection(target.host, target.port)
            self._conn.sock = sock  # already connected: http.client must not connect (and resolve) again
            sock.settimeout(deadline.check(doing))
            self._conn.putrequest("GET", target.request_target, skip_host=True, skip_accept_encoding=True)
            for name, value in (
                ("Host", target.host_header),
                ("User-Agent", user_agent),
                ("Accept", "image/*,*/*;q=0.8"),
                ("Accept-Encoding", "identity"),  # no gzip: bodies are counted as sent, no decompression bomb
                ("Connection", "close"),
            ):
                self._conn.putheader(name, value)
            self._conn.endheaders()
            doing = f"waiting for {target.host}'s response headers"
            sock.settimeout(deadline.check(doing))
            self._response = self._conn.getresponse()
            if deadline.expired():  # the watchdog cut the headers short: what was parsed may be partial
                raise deadline.refusal(doing)
        except FetchRefused:
            self.close()
            raise
        except (OSError, http.client.HTTPException) as err:
            self.close()
            raise _failure(err, deadline, doing) from None

    def read_body(self, limit: int, *, truncate: bool = False) -> io.BytesIO:
        """The body, at most `limit` bytes (over it: `image_too_large_bytes`, or cut at `limit` if `truncate`)."""
        declared = _declared_length(self._response)
        if declared is not None and declared > limit and not truncate:
            raise FetchRefused(IMAGE_TOO_LARGE_BYTES, f"Content-Length {declared} > {limit}")
        out, total, doing = io.BytesIO(), 0, f"reading the body from {self.target.host}"
        try:
            while total < limit or not truncate:
                self._sock.settimeout(self._deadline.check(doing))
                chunk = self._response.read1(_CHUNK)
                if not chunk:
                    break
                if total + len(chunk) > limit:
                    if not truncate:
                        raise FetchRefused(IMAGE_TOO_LARGE_BYTES, f"body over {limit} bytes")
                    chunk = chunk[: limit - total]
                out.write(chunk)
                total += len(chunk)
        except (OSError, http.client.HTTPException) as err:
            raise _failure(err, self._deadline, doing) from None
        if self._deadline.expired():  # the watchdog's shutdown reads as an early end of the body
            raise self._deadline.refusal(doing)
        if declared is not None and total < min(declared, limit):
            raise FetchRefused(CONNECTION_ERROR, f"{doing}: body ended after {total} of {declared} bytes")
        out.seek(0)
        return out

    def close(self) -> None:
        """Release the connection; disarm the watchdog first so it never touches a closed socket."""
        if self._handle is not None:
            watchdog().disarm(self._handle)
            self._handle = None
        if self._response is not None:
            self._response.close()
        if self._conn is not None:
            self._conn.close()
        elif self._sock is not None:
            self._sock.close()
