"""Per-host politeness budgets shared by processes: the ledger one host's record follows, and the machine store.

A host's record holds the time its next request may start (the token bucket's next-start time), when a Retry-After
closes it until, and the slots in flight as leases that expire: a process killed while holding one does not hold it
forever. `MachineBudget` keeps the records in lock-protected files under a per-user runtime folder, so every
download process of one machine (img2dataset's spawned workers, several `tessera ingest` runs, the video download)
shares one budget; `pipelines.ingest.fetch.ray_budget` keeps them in one Ray actor for a whole cluster.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pipelines.core.errors import TesseraEnvironmentError

BUDGET_DIR_ENV = "TESSERA_HOST_BUDGET_DIR"
BUCKETS = 1024  # files the hosts are spread over: bounded however many hosts a crawl meets


@dataclass(frozen=True)
class Grant:
    """The answer to a slot request: a lease and the seconds until the request may start, or why not."""

    lease: str | None
    delay: float = 0.0
    full: bool = False  # every slot is taken: ask again soon (otherwise lease None means the start is too late)
    closed: float = 0.0  # the host asked for a pause: seconds left


def take_slot(record: dict, now: float, connections: int, interval: float, hold: float, max_delay: float | None,
              holder: int, alive: Callable[[int], bool]) -> Grant:
    """Reserve a slot and a start time in `record` (changed in place) unless the start would pass `max_delay`."""
    if record.get("c", 0.0) > now:
        return Grant(None, closed=record["c"] - now)
    leases = record.setdefault("l", {})
    for lease, (pid, expires) in list(leases.items()):
        if expires <= now or not alive(pid):
            del leases[lease]
    if len(leases) >= connections:
        return Grant(None, full=True)
    start = max(now, record.get("n", 0.0))
    if max_delay is not None and start - now > max_delay:
        return Grant(None, start - now)
    lease = secrets.token_hex(6)
    leases[lease] = (holder, start + hold)
    record["n"] = start + interval
    return Grant(lease, start - now)


def idle(record: dict, now: float) -> bool:
    """A record that limits nobody: no slot held, no start time or pause ahead. It can be dropped."""
    return not record.get("l") and max(record.get("n", 0.0), record.get("c", 0.0)) <= now


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of someone else reuses the id: ours is gone
        return False
    return True


def _boot_id() -> str:
    """Changes at every boot, as the monotonic clock the records use restarts then."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return str(int((time.time() - time.monotonic()) // 60))


def default_budget_dir() -> Path:
    """TESSERA_HOST_BUDGET_DIR, else a folder of this user's under XDG_RUNTIME_DIR or the temp folder."""
    if os.environ.get(BUDGET_DIR_ENV):
        return Path(os.environ[BUDGET_DIR_ENV])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "tessera" if runtime else Path(tempfile.gettempdir()) / f"tessera-{os.getuid()}"
    return base / f"hosts-{_boot_id()}"


class MachineBudget:
    """Per-host records in files under `folder`, each read and written under an exclusive `flock`."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_budget_dir()
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise TesseraEnvironmentError(
                f"cannot create the per-host politeness folder {self.folder} ({err.strerror}); set "
                f"{BUDGET_DIR_ENV} to a writable folder") from None
        if self.folder.stat().st_uid != os.getuid():
            raise TesseraEnvironmentError(f"the per-host politeness folder {self.folder} belongs to another user; "
                                          f"set {BUDGET_DIR_ENV} to a folder of your own")

    def _path(self, host: str) -> Path:
        bucket = int.from_bytes(hashlib.blake2b(host.encode(), digest_size=4).digest(), "big") % BUCKETS
        return self.folder / f"{bucket:04x}.json"

    @contextmanager
    def _record(self, host: str) -> Iterator[dict]:
        fd = os.open(self._path(host), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = b""
            while chunk := os.read(fd, 1 << 16):
                raw += chunk
            try:
                hosts = json.loads(raw) if raw else {}
            except ValueError:  # a writer killed between truncate and write: its bucket's pacing restarts
                hosts = {}
            record = hosts.setdefault(host, {})
            before = json.dumps(hosts, sort_keys=True)
            yield record
            now = time.monotonic()
            for name in [h for h, r in hosts.items() if idle(r, now)]:
                del hosts[name]
            after = json.dumps(hosts, sort_keys=True)
            if after != before or raw == b"":
                os.ftruncate(fd, 0)
                os.pwrite(fd, after.encode(), 0)
        finally:
            os.close(fd)  # closing drops the lock

    def take(self, host: str, connections: int, interval: float, hold: float, max_delay: float | None) -> Grant:
        """Reserve a slot of `host` and its next start time; see `take_slot`."""
        with self._record(host) as record:
            return take_slot(record, time.monotonic(), connections, interval, hold, max_delay, os.getpid(), _alive)

    def give(self, host: str, lease: str) -> None:
        """Return the slot `lease` of `host`."""
        with self._record(host) as record:
            record.get("l", {}).pop(lease, None)

    def defer(self, host: str, seconds: float) -> None:
        """No new request to `host` for `seconds` (a Retry-After we wait for)."""
        with self._record(host) as record:
            record["n"] = max(record.get("n", 0.0), time.monotonic() + seconds)

    def close(self, host: str, seconds: float) -> None:
        """Refuse `host`'s URLs for `seconds` (a Retry-After longer than we wait)."""
        with self._record(host) as record:
            record["c"] = max(record.get("c", 0.0), time.monotonic() + seconds)
