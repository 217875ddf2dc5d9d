"""robots.txt, fetched once per origin and process through the guarded fetch, read by urllib.robotparser.

What an unreadable robots.txt means follows RFC 9309: 4xx (and a redirect loop) allow everything, 5xx and a
give-up on 429/503 forbid everything. A host we cannot reach at all fails its images with the same reason
(`connection_error`, `deadline_exceeded`) rather than `robots_disallowed`, so the stats say what happened.
A Crawl-delay (or Request-rate) for our token is returned by `check`, for the fetcher to space that host's requests.
"""

from __future__ import annotations

import threading
import urllib.robotparser
from collections import OrderedDict
from typing import Callable

from pipelines.ingest.fetch.reasons import (
    CONNECTION_ERROR,
    DEADLINE_EXCEEDED,
    ROBOTS_DISALLOWED,
    TOO_MANY_REDIRECTS,
    FetchRefused,
)
from pipelines.ingest.fetch.target import Target

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB, ignore the rest
# (status, body) of GET robots_url through the guarded fetch; raises FetchRefused.
RobotsLoader = Callable[[Target], tuple[int, bytes]]
# Told (origin, seconds) once per robots.txt read that asks a Crawl-delay.
DelayReport = Callable[[str, float], None]


def crawl_delay(parser: urllib.robotparser.RobotFileParser, agent: str) -> float:
    """Seconds between requests asked of `agent`: its Crawl-delay, or Request-rate n/s as s/n (the larger)."""
    delay = parser.crawl_delay(agent) or 0.0
    rate = parser.request_rate(agent)
    if rate is not None and rate.requests > 0:
        delay = max(delay, rate.seconds / rate.requests)
    return max(0.0, float(delay))


class _Entry:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.parser: urllib.robotparser.RobotFileParser | None = None
        self.allow_all = False
        self.deny_why: str | None = None  # set: every path is disallowed, for this reason
        self.failure: FetchRefused | None = None  # set: the host is unreachable, images fail the same way
        self.delay = 0.0  # seconds between requests robots.txt asks of our token


class RobotsCache:
    """Answers "may `agent` fetch this URL?" per origin; concurrent askers share one robots.txt fetch."""

    def __init__(self, load: RobotsLoader, agent: str, capacity: int = 10_000,
                 on_delay: DelayReport | None = None) -> None:
        self._load = load
        self._on_delay = on_delay
        self.agent = agent
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def check(self, target: Target) -> float:
        """The Crawl-delay in seconds (0: none) if robots.txt allows `target`; raise `robots_disallowed` (or the
        host's failure) otherwise."""
        with self._lock:
            entry = self._entries.get(target.origin)
            owner = entry is None
            if owner:
                entry = self._entries[target.origin] = _Entry()
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(target.origin)
        if owner:
            try:
                self._fill(entry, target)
            except BaseException:
                with self._lock:  # a bug, not an answer: do not cache it
                    if self._entries.get(target.origin) is entry:
                        del self._entries[target.origin]
                raise
            finally:
                entry.done.set()
        else:
            entry.done.wait()
        self._verdict(entry, target)
        return entry.delay

    def _fill(self, entry: _Entry, target: Target) -> None:
        try:
            status, body = self._load(target)
        except FetchRefused as refusal:
            if refusal.reason in (CONNECTION_ERROR, DEADLINE_EXCEEDED):
                entry.failure = FetchRefused(refusal.reason, f"robots.txt: {refusal.detail}")
            elif refusal.reason == TOO_MANY_REDIRECTS:
                entry.allow_all = True
            else:
                entry.deny_why = f"{target.robots_url} unavailable ({refusal})"
            return
        if 200 <= status < 300:
            parser = urllib.robotparser.RobotFileParser(target.robots_url)
            parser.parse(body.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines())
            entry.parser = parser
            entry.delay = crawl_delay(parser, self.agent)
            if entry.delay > 0 and self._on_delay is not None:
                self._on_delay(target.origin, entry.delay)
        elif status < 500:  # 4xx, or a redirect without a Location: "unavailable"
            entry.allow_all = True
        else:
            entry.deny_why = f"{target.robots_url} answered {status}"

    def _verdict(self, entry: _Entry, target: Target) -> None:
        if entry.failure is not None:
            raise entry.failure
        if entry.deny_why is not None:
            raise FetchRefused(ROBOTS_DISALLOWED, entry.deny_why)
        if entry.allow_all:
            return
        if entry.parser is None:  # the fetching thread died of an unexpected error
            raise FetchRefused(CONNECTION_ERROR, f"{target.robots_url} could not be read")
        if not entry.parser.can_fetch(self.agent, target.url):
            detail = f"{target.robots_url} disallows {target.request_target} for {self.agent}"
            raise FetchRefused(ROBOTS_DISALLOWED, detail)
