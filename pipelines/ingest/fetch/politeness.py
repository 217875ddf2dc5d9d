"""Per-host politeness: a cap on open connections and request spacing, per host.

`HostGate` alone holds the limits for the threads of one process. Given a shared budget (`MachineBudget`: every
download process of this machine; `ClusterBudget`: every worker of a Ray cluster) it still queues its own threads
per host, and takes each slot and start time from that budget, so the caps hold for all processes together.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from pipelines.ingest.fetch.host_budget import Grant
from pipelines.ingest.fetch.target import Target

_POLL_FIRST, _POLL_MAX = 0.005, 0.05  # seconds between asks while every shared slot is taken


def host_key(target: Target) -> str:
    """What the limits count by: the host, with its port when that is not 80 or 443 (another server)."""
    return target.host if target.port in (80, 443) else f"{target.host}:{target.port}"


class HostClosed(Exception):
    """The host asked for a pause longer than we wait (a Retry-After over the cap): `seconds` left."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"closed for {seconds:.0f} s")
        self.seconds = seconds


class SharedBudget(Protocol):
    """Per-host slots and start times shared by processes; times are seconds from now (each side has its clock)."""

    def take(self, host: str, connections: int, interval: float, hold: float, max_delay: float | None) -> Grant: ...
    def give(self, host: str, lease: str) -> None: ...
    def defer(self, host: str, seconds: float) -> None: ...
    def close(self, host: str, seconds: float) -> None: ...


@dataclass
class _Host:
    slots: threading.BoundedSemaphore
    next_at: float = 0.0  # monotonic time the next request to this host may start (without a shared budget)
    closed_until: float = 0.0  # the host asked for a pause longer than we wait: refuse its URLs until then
    users: int = 0  # threads holding or waiting for a slot; an idle entry is dropped


@dataclass(frozen=True)
class Slot:
    """A connection slot taken by `HostGate.acquire`; give it back with `release`."""

    host: str
    entry: _Host
    lease: str | None = None


class HostGate:
    """At most `connections` requests in flight per host, started at most `rate` per second; with a `budget`,
    for all the processes sharing it. `hold`: the longest a slot is held (a fetch's deadline), after which a shared
    slot of a process that died is free again."""

    def __init__(self, connections: int, rate: float, *, hold: float = 60.0, budget: SharedBudget | None = None):
        self.connections = connections
        self.interval = 1.0 / rate
        self.hold = hold
        self.budget = budget
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}

    def _enter(self, host: str) -> _Host:
        with self._lock:
            entry = self._hosts.get(host)
            if entry is None:
                entry = self._hosts[host] = _Host(threading.BoundedSemaphore(self.connections))
            entry.users += 1
            return entry

    def _leave(self, host: str, entry: _Host) -> None:
        with self._lock:
            entry.users -= 1
            if entry.users == 0 and max(entry.next_at, entry.closed_until) <= time.monotonic():
                del self._hosts[host]  # idle and not pacing anyone: forget it, so the host table stays small

    def acquire(self, host: str, until: float | None, interval: float | None = None) -> Slot | None:
        """Wait for a connection slot and this host's next start time, `interval` (default 1/rate) after the
        previous one; None (holding nothing) when that would pass the monotonic time `until` (None: no limit).
        Raises `HostClosed` while the host is closed."""
        interval = max(self.interval, interval or 0.0)
        entry = self._enter(host)
        try:
            closed = entry.closed_until - time.monotonic()
            if closed > 0:
                raise HostClosed(closed)
            timeout = None if until is None else max(0.0, until - time.monotonic())
            if not entry.slots.acquire(timeout=timeout):
                self._leave(host, entry)
                return None
        except HostClosed:
            self._leave(host, entry)
            raise
        try:
            if self.budget is None:
                slot, wait = self._local_start(host, entry, until, interval)
            else:
                slot, wait = self._shared_start(host, entry, until, interval)
        except BaseException:
            entry.slots.release()
            self._leave(host, entry)
            raise
        if slot is None:
            entry.slots.release()
            self._leave(host, entry)
            return None
        if wait > 0:
            time.sleep(wait)
        return slot

    def _local_start(self, host: str, entry: _Host, until: float | None, interval: float) -> tuple[Slot | None, float]:
        with self._lock:
            now = time.monotonic()
            start = max(now, entry.next_at)
            if until is not None and start > until:
                return None, 0.0
            entry.next_at = start + interval
        return Slot(host, entry), start - now

    def _shared_start(self, host: str, entry: _Host, until: float | None, interval: float) -> tuple[Slot | None, float]:
        poll = _POLL_FIRST
        while True:
            left = None if until is None else until - time.monotonic()
            grant = self.budget.take(host, self.connections, interval, self.hold, left)
            if grant.closed > 0:
                with self._lock:
                    entry.closed_until = max(entry.closed_until, time.monotonic() + grant.closed)
                raise HostClosed(grant.closed)
            if grant.lease is not None:
                return Slot(host, entry, grant.lease), grant.delay
            if not grant.full or (left is not None and left <= 0):
                return None, 0.0
            time.sleep(poll if left is None else min(poll, left))
            poll = min(_POLL_MAX, poll * 2)

    def release(self, slot: Slot) -> None:
        """Give back a slot taken by `acquire`."""
        if slot.lease is not None:
            self.budget.give(slot.host, slot.lease)
        slot.entry.slots.release()
        self._leave(slot.host, slot.entry)

    def close(self, host: str, seconds: float) -> None:
        """Refuse requests to `host` for `seconds` (a Retry-After longer than we wait)."""
        entry = self._enter(host)
        with self._lock:
            entry.closed_until = max(entry.closed_until, time.monotonic() + seconds)
        if self.budget is not None:
            self.budget.close(host, seconds)
        self._leave(host, entry)

    def defer(self, host: str, seconds: float) -> None:
        """No new request to `host` for `seconds` (a 429/503 with Retry-After)."""
        entry = self._enter(host)
        with self._lock:
            entry.next_at = max(entry.next_at, time.monotonic() + seconds)
        if self.budget is not None:
            self.budget.defer(host, seconds)
        self._leave(host, entry)
