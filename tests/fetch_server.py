"""A real HTTP(S) server on 127.0.0.1 with per-path handlers, for the fetch-layer tests (no HTTP mocking)."""

from __future__ import annotations

import io
import ssl
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

from PIL import Image

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Served:
    """What a test server saw: its base URL, every request as (path, headers), and TLS server names."""

    url: str
    port: int
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]


def send(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
    """A complete response with Content-Length."""
    h.send_response(status)
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def redirect(location: str) -> Route:
    return lambda h: send(h, 302, headers={"Location": location})


def body(data: bytes, headers: dict[str, str] | None = None) -> Route:
    return lambda h: send(h, 200, data, headers)


def drip(h: BaseHTTPRequestHandler, data: bytes, every: float) -> None:
    """Write `data` one byte at a time; stop quietly when the client goes away."""
    for i in range(len(data)):
        try:
            h.wfile.write(data[i : i + 1])
            h.wfile.flush()
        except OSError:
            return
        time.sleep(every)


@contextmanager
def serve(routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> Iterator[Served]:
    """Serve `routes` (exact paths; anything else is 404) on 127.0.0.1 in a thread."""
    served = Served("", 0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            served.requests.append((self.path, {k: v for k, v in self.headers.items()}))
            route = routes.get(self.path)
            if route is None:
                send(self, 404, b"not found")
            else:
                route(self)

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:
            pass  # clients that hang up on purpose are the point of these tests

    server = Server(("127.0.0.1", 0), Handler)
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: served.sni.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    served.port = server.server_address[1]
    served.url = f"{'https' if tls else 'http'}://127.0.0.1:{served.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def jpeg(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "red").save(buf, format="JPEG")
    return buf.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header declares width x height 8-bit grey pixels, with one compressed row: tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A real small JPEG whose SOF0 header is rewritten to declare width x height."""
    data = bytearray(jpeg(16, 16))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)
