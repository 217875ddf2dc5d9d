"""The guarded, polite fetch of one image URL, returning img2dataset's `(key, BytesIO|None, error|None)`.

Per hop: http(s) only, every resolved address vetted, robots.txt honoured, a per-host slot and start time
taken, then one pinned GET. 429/503 and connection resets are retried with bounded, jittered backoff that
honours Retry-After; nothing waits past the URL's deadline, which starts with the first request.
"""

from __future__ import annotations

import email.utils
import io
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin

from pipelines.ingest.fetch.address import AddressPolicy, IPAddress, Resolver, resolve_vetted
from pipelines.ingest.fetch.config import FetchConfig
from pipelines.ingest.fetch.deadline import Deadline
from pipelines.ingest.fetch.politeness import HostClosed, HostGate, SharedBudget, host_key
from pipelines.ingest.fetch.reasons import (
    CONNECTION_ERROR,
    HTTP_ERROR,
    OPT_OUT_HEADER,
    RATE_LIMITED,
    TOO_MANY_REDIRECTS,
    FetchRefused,
)
from pipelines.ingest.fetch.robots import ROBOTS_MAX_BYTES, RobotsCache
from pipelines.ingest.fetch.target import Target, parse_target
from pipelines.ingest.fetch.transport import Exchange

log = logging.getLogger(__name__)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HOLD_MARGIN = 5.0  # seconds a shared slot outlives its fetch's deadline before it counts as abandoned
_RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class _Reply:
    status: int
    body: io.BytesIO | None = None
    location: str | None = None


@dataclass(frozen=True)
class _Retry:
    status: int | None  # 429/503, or None for a connection reset
    after: float | None  # Retry-After in seconds
    refusal: FetchRefused | None = None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None if absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def opt_out_directive(values: list[str], token: str, disallowed: tuple[str, ...]) -> str | None:
    """The X-Robots-Tag value that opts out of use by `token` (unscoped or scoped `token: directive`), or None."""
    for value in values:
        scoped = value.split(":", 1)
        scope = scoped[0].strip().lower() if len(scoped) == 2 else None
        directives = {d.strip().lower() for d in scoped[-1].split(",")}
        if scope in (None, token.lower()) and directives & set(disallowed):
            return value
    return None


def shared_budget(scope: str) -> SharedBudget | None:
    """The per-host budget shared at `scope`: None for "process", this machine's files, or the Ray cluster's actor."""
    if scope == "machine":
        from pipelines.ingest.fetch.host_budget import MachineBudget

        return MachineBudget()
    if scope == "cluster":
        from pipelines.ingest.fetch.ray_budget import ClusterBudget

        return ClusterBudget()
    return None


class Fetcher:
    """Guarded, polite HTTP GET of image URLs. Thread-safe; make one per process (it holds the per-host gate
    and the robots.txt cache) and call `fetch((key, url))` from any thread. The per-host caps are shared with the
    other processes of `config.host_budget` (this machine by default)."""

    def __init__(
        self, config: FetchConfig | None = None, *, resolver: Resolver | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = cfg = config or FetchConfig()
        self._resolver = resolver or socket.getaddrinfo
        self._policy = AddressPolicy(cfg.allow_private_network, cfg.allowed_networks)
        self._gate = HostGate(cfg.per_host_connections, cfg.per_host_rate, hold=cfg.timeout + _HOLD_MARGIN,
                              budget=shared_budget(cfg.host_budget))
        self._robots = RobotsCache(self._load_robots, cfg.user_agent_token, on_delay=self._report_delay)
        self._tls = tls_context or ssl.create_default_context()

    def _report_delay(self, origin: str, delay: float) -> None:
        """The one line per origin and process that says what a Crawl-delay makes of the rate."""
        cfg = self.config
        if delay > cfg.retry_after_cap:
            log.warning("%s: robots.txt asks a Crawl-delay of %g s, over the %g s cap: its URLs fail as rate_limited",
                        origin, delay, cfg.retry_after_cap)
            return
        rate = min(cfg.per_host_rate, 1.0 / delay)
        log.warning("%s: robots.txt asks a Crawl-delay of %g s: %.3g requests/s to it (cap %g/s), shared per %s",
                    origin, delay, rate, cfg.per_host_rate, cfg.host_budget)

    def fetch(self, row: tuple[Any, str]) -> tuple[Any, io.BytesIO | None, str | None]:
        """img2dataset's download triple for `(key, url)`: the body, or None and `"<reason>: <detail>"`."""
        key, url = row
        try:
            return key, self._get(url, image=True).body, None
        except FetchRefused as refusal:
            return key, None, str(refusal)

    def _load_robots(self, target: Target) -> tuple[int, bytes]:
        reply = self._get(target.robots_url, image=False)
        return reply.status, reply.body.getvalue() if reply.body is not None else b""

    def _get(self, url: str, *, image: bool) -> _Reply:
        """Follow `url` through at most `max_redirects` redirects, each hop guarded and polite."""
        cfg, deadline = self.config, Deadline(self.config.timeout)
        for _hop in range(cfg.max_redirects + 1):
            target = parse_target(url)
            addresses = resolve_vetted(target.host, target.port, self._resolver, self._policy)
            delay = self._robots.check(target) if image and cfg.respect_robots else 0.0
            if delay > cfg.retry_after_cap:
                raise FetchRefused(RATE_LIMITED, f"robots.txt Crawl-delay {delay:g} s is over the "
                                                 f"{cfg.retry_after_cap:g} s cap")
            reply = self._with_retries(target, addresses, deadline, image, delay)
            if reply.location is None:
                return reply
            url = urljoin(target.url, reply.location)
        raise FetchRefused(TOO_MANY_REDIRECTS, f"more than {cfg.max_redirects}, next was {url[:200]}")

    def _with_retries(self, target: Target, addresses: list[IPAddress], deadline: Deadline, image: bool,
                      delay: float) -> _Reply:
        attempt, key = 0, host_key(target)
        while True:
            attempt += 1
            # The first request of a URL may queue behind its host for as long as politeness needs; the
            # deadline starts when it goes out and bounds everything after, including later queueing.
            try:
                slot = self._gate.acquire(key, deadline.at, delay)
            except HostClosed as closed:
                raise FetchRefused(RATE_LIMITED, f"{target.host} asked for a pause, {closed.seconds:.0f} s left") from None
            if slot is None:
                raise deadline.refusal(f"waiting for a free slot on {target.host}")
            try:
                deadline.start()
                outcome = self._attempt(target, addresses, deadline, image)
            finally:
                self._gate.release(slot)
            if isinstance(outcome, _Reply):
                return outcome
            self._wait_to_retry(target, outcome, attempt, deadline)

    def _wait_to_retry(self, target: Target, retry: _Retry, attempt: int, deadline: Deadline) -> None:
        """Sleep before the next attempt, or raise the give-up refusal (out of retries, or past the deadline)."""
        cfg = self.config
        if retry.status is None:
            give_up = retry.refusal
        else:
            give_up = FetchRefused(RATE_LIMITED, f"{target.host} answered {retry.status} {attempt} times")
        if retry.after is not None and retry.after > cfg.retry_after_cap:
            # Not worth waiting for, but honoured: this process sends that host nothing until then.
            self._gate.close(host_key(target), retry.after)
            raise FetchRefused(RATE_LIMITED, f"Retry-After {retry.after:g} s is over the {cfg.retry_after_cap:g} s cap")
        if attempt > cfg.retries:
            raise give_up
        if retry.after is not None:
            wait = retry.after * random.uniform(1.0, 1.1)
            self._gate.defer(host_key(target), wait)  # the other threads (and processes) wait for it as well
        else:
            wait = min(cfg.backoff_max, cfg.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        if wait >= deadline.remaining():
            raise FetchRefused(give_up.reason, f"{give_up.detail}; a retry in {wait:.1f} s would pass the deadline")
        time.sleep(wait)

    def _attempt(self, target: Target, addresses: list[IPAddress], deadline: Deadline, image: bool) -> _Reply | _Retry:
        cfg = self.config
        exchange = Exchange(target, deadline)
        try:
            exchange.open(addresses, self._policy, self._tls, cfg.user_agent)
            status = exchange.status
            if status in _RETRY_STATUSES:
                return _Retry(status, parse_retry_after(exchange.header("Retry-After")))
            location = exchange.header("Location")
            if status in _REDIRECTS and location:
                return _Reply(status, location=location)
            if not image:
                ok = 200 <= status < 300
                return _Reply(status, exchange.read_body(ROBOTS_MAX_BYTES, truncate=True) if ok else None)
            if not 200 <= status < 300:
                raise FetchRefused(HTTP_ERROR, str(status))
            tag = opt_out_directive(
                exchange.header_values("X-Robots-Tag"), cfg.user_agent_token, cfg.disallowed_header_directives
            )
            if tag is not None:
                raise FetchRefused(OPT_OUT_HEADER, f"X-Robots-Tag: {tag}")
            return _Reply(status, exchange.read_body(cfg.max_image_bytes))
        except FetchRefused as refusal:
            if refusal.retryable and refusal.reason == CONNECTION_ERROR:
                return _Retry(None, None, refusal)
            raise
        finally:
            exchange.close()
