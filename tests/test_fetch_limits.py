"""Time, size, status and header limits of the fetch layer against real servers on 127.0.0.1: the whole-fetch
deadline against slow drips, byte caps with and without Content-Length, retries, opt-out headers."""

from __future__ import annotations

import socket
import struct
import time
from email.utils import formatdate

from fetch_server import body, drip, jpeg, send, serve
from pipelines.ingest.fetch import FetchConfig, Fetcher, reason_of
from pipelines.ingest.fetch.fetcher import parse_retry_after

IMG = jpeg()


def fetcher(**kw) -> Fetcher:
    kw.setdefault("timeout", 5)
    # Each case checks one Fetcher's own retry logic: it must not inherit the pauses (a shared Retry-After) that
    # an earlier case's server asked of this machine's budget.
    kw.setdefault("host_budget", "process")
    return Fetcher(FetchConfig(allow_private_network=True, respect_robots=False, **kw))


def fetch_timed(f: Fetcher, url: str):
    start = time.monotonic()
    _, data, error = f.fetch((0, url))
    return data, error, time.monotonic() - start


def test_slow_drip_body_and_headers_end_at_the_deadline():
    def drip_body(h):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        drip(h, b"x" * 1000, 0.1)

    def drip_headers(h):
        h.wfile.write(b"HTTP/1.0 200 OK\r\n")
        drip(h, b"X-Slow: " + b"y" * 200 + b"\r\n\r\n", 0.1)

    with serve({"/body": drip_body, "/headers": drip_headers}) as srv:
        for path in ("/body", "/headers"):
            data, error, took = fetch_timed(fetcher(timeout=1.5), srv.url + path)
            assert data is None and error.startswith("deadline_exceeded: "), error
            assert 1.4 < took < 2.5, (path, took)  # every read was quick: only a whole-fetch clock stops these


def test_byte_cap_from_content_length_and_while_streaming():
    big = b"z" * (2 * 1024 * 1024)

    def close_delimited(h):  # HTTP/1.0, no Content-Length: the body ends when the server closes
        h.send_response(200)
        h.end_headers()
        h.wfile.write(big)

    def chunked(h):
        h.protocol_version = "HTTP/1.1"
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        for i in range(0, len(big), 65536):
            h.wfile.write(b"%x\r\n%s\r\n" % (65536, big[i : i + 65536]))
        h.wfile.write(b"0\r\n\r\n")

    def lying_length(h):  # declares 5 MB, then stalls: we must refuse on the header, not wait for the body
        h.send_response(200)
        h.send_header("Content-Length", str(5 * 1024 * 1024))
        h.end_headers()
        time.sleep(3)

    routes = {"/cl": lying_length, "/close": close_delimited, "/chunked": chunked,
              "/exact": body(b"e" * 1024 * 1024)}
    with serve(routes) as srv:
        f = fetcher(max_image_bytes=1024 * 1024)
        data, error, took = fetch_timed(f, srv.url + "/cl")
        assert error == f"image_too_large_bytes: Content-Length {5 * 1024 * 1024} > {1024 * 1024}" and took < 1
        for path in ("/close", "/chunked"):
            data, error, _ = fetch_timed(f, srv.url + path)
            assert data is None and error == f"image_too_large_bytes: body over {1024 * 1024} bytes", (path, error)
        data, error, _ = fetch_timed(f, srv.url + "/exact")
        assert error is None and len(data.getvalue()) == 1024 * 1024


def test_429_with_retry_after_then_success():
    hits = {"n": 0}

    def flaky(h):
        hits["n"] += 1
        if hits["n"] == 1:
            send(h, 429, headers={"Retry-After": "1"})
        else:
            send(h, 200, IMG)

    with serve({"/a.jpg": flaky}) as srv:
        data, error, took = fetch_timed(fetcher(retries=2), srv.url + "/a.jpg")
        assert error is None and data.read() == IMG
        assert hits["n"] == 2 and took >= 1.0


def test_rate_limited_after_retries_and_when_retry_after_passes_the_deadline():
    routes = {
        "/busy": lambda h: send(h, 503, headers={"Retry-After": "0"}),
        "/later": lambda h: send(h, 429, headers={"Retry-After": "30"}),
        "/much-later": lambda h: send(h, 429, headers={"Retry-After": "120"}),
    }
    with serve(routes) as srv:
        data, error, _ = fetch_timed(fetcher(retries=2), srv.url + "/busy")
        assert error == "rate_limited: 127.0.0.1 answered 503 3 times" and srv.paths().count("/busy") == 3
        data, error, took = fetch_timed(fetcher(retries=3, timeout=2), srv.url + "/later")
        assert error.startswith("rate_limited: ") and "deadline" in error and took < 0.5
        f = fetcher(retries=3, timeout=300)
        data, error, took = fetch_timed(f, srv.url + "/much-later")
        assert error == "rate_limited: Retry-After 120 s is over the 60 s cap" and took < 0.5
        srv.requests.clear()
        data, error, took = fetch_timed(f, srv.url + "/busy")  # the host asked for a pause: nothing is sent
        assert error.startswith("rate_limited: 127.0.0.1 asked for a pause, 1") and srv.requests == []


def test_connection_reset_is_retried():
    hits = {"n": 0}

    def reset_once(h):
        hits["n"] += 1
        if hits["n"] % 2 == 1:  # abortive close: the client sees a reset, not a response
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.wfile = open("/dev/null", "wb")  # noqa: SIM115 - http.server flushes it after the handler
            return
        send(h, 200, IMG)

    with serve({"/a.jpg": reset_once}) as srv:
        data, error, _ = fetch_timed(fetcher(retries=1, backoff_base=0.05), srv.url + "/a.jpg")
        assert error is None and data.read() == IMG and hits["n"] == 2
        data, error, _ = fetch_timed(fetcher(retries=0), srv.url + "/a.jpg")
        assert data is None and error.startswith("connection_error: ") and hits["n"] == 3


def test_http_errors_and_unreachable_hosts():
    with serve({}) as srv:
        assert fetcher().fetch((3, srv.url + "/missing.jpg")) == (3, None, "http_error: 404")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    _, data, error = fetcher().fetch((0, f"http://127.0.0.1:{port}/a.jpg"))
    assert data is None and reason_of(error) == "connection_error"


def test_opt_out_header_is_checked_before_the_body_is_read():
    def stalled(tag):
        def route(h):
            h.send_response(200)
            h.send_header("X-Robots-Tag", tag)
            h.send_header("Content-Length", str(len(IMG)))
            h.end_headers()
            time.sleep(3)  # the body never comes: reading it would hit the deadline

        return route

    routes = {"/noai": stalled("noai, nofollow"), "/scoped": stalled("tessera: noimageai"),
              "/other-bot": body(IMG, {"X-Robots-Tag": "otherbot: noai"}),
              "/fine": body(IMG, {"X-Robots-Tag": "nofollow"})}
    with serve(routes) as srv:
        f = fetcher(timeout=2)
        for path, tag in (("/noai", "noai, nofollow"), ("/scoped", "tessera: noimageai")):
            data, error, took = fetch_timed(f, srv.url + path)
            assert error == f"opt_out_header: X-Robots-Tag: {tag}" and took < 1
        for path in ("/other-bot", "/fine"):
            assert f.fetch((0, srv.url + path))[1].read() == IMG


def test_retry_after_forms():
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 0 ") == 0.0
    assert 8 < parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
    assert parse_retry_after(formatdate(time.time() - 10, usegmt=True)) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
