"""A small static HTTP server on 127.0.0.1 for the demo and the tests (real HTTP, no mocks).

Files in an `optout/` folder are served with `X-Robots-Tag: noai, noimageai`, which img2dataset must honour.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator


class _Handler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        if "/optout/" in self.path:
            self.send_header("X-Robots-Tag", "noai, noimageai")
        super().end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 - signature fixed by the base class
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


@contextmanager
def serve_folder(root: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `root` over HTTP in a background thread; yields the base URL (`http://127.0.0.1:PORT`)."""
    handler = functools.partial(_Handler, directory=str(Path(root).resolve()))
    server = _Server((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="tessera-http", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
