"""The guarded, polite fetch of one image URL, returning img2dataset's `(key, BytesIO|None, error|None)`.

Per hop: http(s) only, every resolved address vetted, robots.txt honoured, a per-host slot and start time
taken, then one pinned GET. 429/503 and connection resets are retried with bounded, jittered backoff that
honours Retry-After; nothing waits past the URL's deadline, which starts with the first request.
"""

from __future__ import annotations

import email.utils
import io
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
from pipelines.ingest.fetch.politeness import HostGate
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

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
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


class Fetcher:
    """Guarded, polite HTTP GET of image URLs. Thread-safe; make one per process (it holds the per-host gate
    and the robots.txt cache) and call `fetch((key, url))` from any thread."""

    def __init__(
        self, config: FetchConfig | None = None, *, resolver: Resolver | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = cfg = config or FetchConfig()
        self._resolver = resolver or socket.getaddrinfo
        self._policy = AddressPolicy(cfg.allow_private_network, cfg.allowed_networks)
        self._gate = HostGate(cfg.per_host_connections, cfg.per_host_rate)
        self._robots = RobotsCache(self._load_robots, cfg.user_agent_token)
        self._tls = tls_context or ssl.create_default_context()

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
            if image and cfg.respect_robots:
                self._robots.check(target)
            reply = self._with_retries(target, addresses, deadline, image)
            if reply.location is None:
                return reply
            url = urljoin(target.url, reply.location)
        raise FetchRefused(TOO_MANY_REDIRECTS, f"more than {cfg.max_redirects}, next was {url[:200]}")

    def _with_retries(self, target: Target, addresses: list[IPAddress], deadline: Deadline, image: bool) -> _Reply:
        cfg, attempt = self.config, 0
        while True:
            attempt += 1
            closed = self._gate.closed_for(target.host)
            if closed > 0:
                raise FetchRefused(RATE_LIMITED, f"{target.host} asked for a pause, {closed:.0f} s left")
            # The first request of a URL may queue behind its host for as long as politeness needs; the
            # deadline starts when it goes out and bounds everything after, including later queueing.
            if not self._gate.acquire(target.host, deadline.at):
                raise deadline.refusal(f"waiting for a free slot on {target.host}")
            try:
                deadline.start()
                outcome = self._attempt(target, addresses, deadline, image)
            finally:
                self._gate.release(target.host)
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
            self._gate.close(target.host, time.monotonic() + retry.after)
            raise FetchRefused(RATE_LIMITED, f"Retry-After {retry.after:g} s is over the {cfg.retry_after_cap:g} s cap")
        if attempt > cfg.retries:
            raise give_up
        if retry.after is not None:
            wait = retry.after * random.uniform(1.0, 1.1)
            self._gate.defer(target.host, time.monotonic() + wait)  # the other threads wait for it as well
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
