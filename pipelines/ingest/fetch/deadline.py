"""The wall-clock deadline of one fetch, and the watchdog that enforces it on sockets.

A socket timeout bounds one blocking call, not the fetch: a server that drips one byte a second keeps every
read short and the response endless. Reads therefore get the remaining time as their timeout, and a watchdog
thread shuts down any socket still open at its deadline, which also ends a slow TLS handshake or header drip.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time

from pipelines.ingest.fetch.reasons import DEADLINE_EXCEEDED, FetchRefused


class Deadline:
    """`seconds` of wall-clock time, counted from `start()` (the first request), shared by hops and retries."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at: float | None = None

    def start(self) -> None:
        """Start the clock; later calls keep the first start."""
        if self.at is None:
            self.at = time.monotonic() + self.seconds

    @property
    def started(self) -> bool:
        return self.at is not None

    def remaining(self) -> float:
        """Seconds left (the full budget before `start()`); 0 when passed."""
        if self.at is None:
            return self.seconds
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def check(self, doing: str) -> float:
        """The seconds left, or `deadline_exceeded` naming what we were `doing`."""
        left = self.remaining()
        if self.started and left <= 0:
            raise self.refusal(doing)
        return left

    def refusal(self, doing: str) -> FetchRefused:
        return FetchRefused(DEADLINE_EXCEEDED, f"{self.seconds:g} s passed while {doing}")


class Watchdog:
    """One daemon thread per process that shuts down armed sockets at their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, socket.socket] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, at: float) -> int:
        """Shut `sock` down at monotonic time `at` unless disarmed first; returns the handle for `disarm`."""
        with self._cond:
            handle = next(self._ids)
            self._armed[handle] = sock
            heapq.heappush(self._heap, (at, handle))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tessera-fetch-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
            return handle

    def disarm(self, handle: int) -> None:
        """Forget the socket behind `handle` (call before closing it, so a reused fd is never touched)."""
        with self._cond:
            self._armed.pop(handle, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, handle = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                sock = self._armed.pop(handle, None)
                if sock is not None:
                    try:
                        # socket.socket's own shutdown, not SSLSocket's: that one also drops its SSL object,
                        # which the reading thread may be using right now.
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass  # already closed or never connected: nothing left to stop


_watchdog: Watchdog | None = None
_watchdog_lock = threading.Lock()


def watchdog() -> Watchdog:
    """This process's watchdog, started on first use."""
    global _watchdog
    with _watchdog_lock:
        if _watchdog is None:
            _watchdog = Watchdog()
        return _watchdog


def _forget_after_fork() -> None:
    # Threads do not survive fork and a lock may have been held at that moment: a child starts afresh.
    global _watchdog, _watchdog_lock
    _watchdog, _watchdog_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
