"""Politeness of the fetch layer against real servers on 127.0.0.1: robots.txt (fetched once per host,
honoured for our token, RFC 9309 on errors, through the guarded fetch) and per-host connection and rate caps."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fetch_server import body, jpeg, redirect, send, serve
from pipelines.ingest.fetch import FetchConfig, Fetcher

IMG = jpeg()
ROBOTS = b"User-agent: tessera\nDisallow: /private/\n\nUser-agent: *\nDisallow: /\n"


def local(**kw) -> FetchConfig:
    return FetchConfig(allowed_networks=("127.0.0.1/32",), timeout=5, **kw)


def test_robots_txt_is_fetched_once_and_honoured_for_our_token():
    routes = {"/robots.txt": body(ROBOTS), "/private/a.jpg": body(IMG), "/public/a.jpg": body(IMG)}
    with serve(routes) as srv:
        fetcher = Fetcher(local())
        urls = [srv.url + "/public/a.jpg", srv.url + "/private/a.jpg"] * 8
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda u: fetcher.fetch((u, u)), urls))
        for url, data, error in results:
            if "/private/" in url:
                assert data is None and error.startswith("robots_disallowed: ") and "/private/a.jpg" in error
            else:
                assert error is None and data.read() == IMG
        assert srv.paths().count("/robots.txt") == 1
        assert "/private/a.jpg" not in srv.paths()
        robots_headers = dict(srv.requests)["/robots.txt"]
        assert "tessera" in robots_headers["User-Agent"]
        # --ignore-robots
        _, data, error = Fetcher(local(respect_robots=False)).fetch((0, srv.url + "/private/a.jpg"))
        assert error is None and data.read() == IMG


def test_robots_txt_errors_follow_rfc_9309():
    for robots, expected in (
        (lambda h: send(h, 404), None),  # unavailable: everything allowed
        (lambda h: send(h, 403), None),
        (lambda h: send(h, 500), "robots_disallowed: "),  # unreachable: everything disallowed
        (lambda h: send(h, 503, headers={"Retry-After": "0"}), "robots_disallowed: "),
        (body(b"User-agent: *\nDisallow: /\n"), "robots_disallowed: "),
        (body(b"User-agent: otherbot\nDisallow: /\n"), None),
    ):
        with serve({"/robots.txt": robots, "/a.jpg": body(IMG)}) as srv:
            _, data, error = Fetcher(local(retries=1, backoff_base=0)).fetch((0, srv.url + "/a.jpg"))
            if expected is None:
                assert error is None and data.read() == IMG
            else:
                assert data is None and error.startswith(expected), error


def test_robots_txt_goes_through_the_guard():
    routes = {"/robots.txt": redirect("http://169.254.169.254/robots.txt"), "/a.jpg": body(IMG)}
    with serve(routes) as srv:
        _, data, error = Fetcher(local()).fetch((0, srv.url + "/a.jpg"))
        assert data is None and error.startswith("robots_disallowed: ") and "blocked_private_address" in error
        assert srv.paths() == ["/robots.txt"]


def test_per_host_connection_cap_and_rate():
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def slow(h):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        send(h, 200, IMG)

    routes = {f"/{i}.jpg": slow for i in range(10)}
    with serve(routes) as srv:
        fetcher = Fetcher(local(respect_robots=False, per_host_connections=2, per_host_rate=20))
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda i: fetcher.fetch((i, f"{srv.url}/{i}.jpg")), range(10)))
        assert all(error is None for _, _, error in results)
        assert state["max"] == 2  # ten threads, one host: never more than two connections

        fetcher = Fetcher(local(respect_robots=False, per_host_connections=8, per_host_rate=10))
        routes.update({f"/{i}.jpg": body(IMG) for i in range(10)})
        begin = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: fetcher.fetch((i, f"{srv.url}/{i}.jpg")), range(6)))
        assert time.monotonic() - begin >= 0.5  # 6 requests at 10/s: the 6th starts 0.5 s after the first


def _fetch_all(url: str, n: int, connections: int, rate: float, barrier) -> None:
    """One download process: `n` fetches of `url` from 8 threads, after every process is ready."""
    fetcher = Fetcher(local(respect_robots=False, per_host_connections=connections, per_host_rate=rate))
    barrier.wait()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: fetcher.fetch((i, f"{url}/{i % 4}.jpg")), range(n)))


def test_caps_hold_for_four_processes_of_one_machine():
    import multiprocessing

    lock, state, starts = threading.Lock(), {"now": 0, "max": 0}, []

    def slow(h):
        with lock:
            starts.append(time.monotonic())
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        send(h, 200, IMG)

    with serve({f"/{i}.jpg": slow for i in range(4)}) as srv:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_fetch_all, args=(srv.url, 10, 3, 20.0, barrier)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert all(p.exitcode == 0 for p in procs)
    assert len(starts) == 40
    assert state["max"] <= 3  # four processes, cap 3: never more than three connections at once
    span = max(starts) - min(starts)
    assert span >= 39 / 20.0 * 0.85, span  # 40 starts at 20/s for the machine, not 80/s for four processes
    assert max(sum(1 for t in starts if s <= t < s + 0.5) for s in starts) <= 0.5 * 20 + 2


def test_crawl_delay_lowers_the_rate(caplog):
    routes = {"/robots.txt": body(b"User-agent: tessera\nCrawl-delay: 1\n"), "/a.jpg": body(IMG)}
    with serve(routes) as srv, caplog.at_level("WARNING"):
        fetcher = Fetcher(local(per_host_rate=100))
        begin = time.monotonic()
        for i in range(3):
            assert fetcher.fetch((i, srv.url + "/a.jpg"))[2] is None
        assert time.monotonic() - begin >= 2.0  # 3 images 1 s apart (robots.txt's integer seconds), not 100/s
    assert "Crawl-delay of 1 s: 1 requests/s" in caplog.text
