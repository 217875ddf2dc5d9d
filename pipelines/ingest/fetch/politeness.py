"""Per-host politeness shared by the threads of one process: a cap on open connections and request spacing.

Limits are per process: with P download processes a host sees at most P times these numbers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Host:
    slots: threading.BoundedSemaphore
    next_at: float = 0.0  # monotonic time the next request to this host may start
    closed_until: float = 0.0  # the host asked for a pause longer than we wait: refuse its URLs until then
    users: int = 0  # threads holding or waiting for a slot; an idle entry is dropped


class HostGate:
    """At most `connections` requests in flight per host, started at most `rate` per second."""

    def __init__(self, connections: int, rate: float) -> None:
        self.connections = connections
        self.interval = 1.0 / rate
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
            self._leave_locked(host, entry)

    def _leave_locked(self, host: str, entry: _Host) -> None:
        entry.users -= 1
        if entry.users == 0 and max(entry.next_at, entry.closed_until) <= time.monotonic():
            del self._hosts[host]  # idle and not pacing anyone: forget it, so the host table stays small

    def acquire(self, host: str, until: float | None) -> bool:
        """Wait for a connection slot and this host's next start time; False (holding nothing) when that would
        pass the monotonic time `until` (None: wait as long as it takes)."""
        entry = self._enter(host)
        timeout = None if until is None else max(0.0, until - time.monotonic())
        if not entry.slots.acquire(timeout=timeout):
            self._leave(host, entry)
            return False
        with self._lock:
            start = max(time.monotonic(), entry.next_at)
            if until is not None and start > until:
                entry.slots.release()
                self._leave_locked(host, entry)
                return False
            entry.next_at = start + self.interval
        wait = start - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return True

    def release(self, host: str) -> None:
        """Give back the slot taken by a successful `acquire`."""
        with self._lock:
            entry = self._hosts[host]
        entry.slots.release()
        self._leave(host, entry)

    def close(self, host: str, until: float) -> None:
        """Refuse requests to `host` before monotonic time `until` (a Retry-After longer than we wait)."""
        entry = self._enter(host)
        with self._lock:
            entry.closed_until = max(entry.closed_until, until)
        self._leave(host, entry)

    def closed_for(self, host: str) -> float:
        """Seconds `host` stays closed by `close`, 0 when open."""
        with self._lock:
            entry = self._hosts.get(host)
            return 0.0 if entry is None else max(0.0, entry.closed_until - time.monotonic())

    def defer(self, host: str, until: float) -> None:
        """No new request to `host` before monotonic time `until` (a 429/503 with Retry-After)."""
        entry = self._enter(host)
        with self._lock:
            entry.next_at = max(entry.next_at, until)
        self._leave(host, entry)
