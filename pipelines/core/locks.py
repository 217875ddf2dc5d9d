"""Exclusive writing across processes: an OS file lock (flock) that a killed process releases by itself.

A lock file records who holds it (pid, host, command, start time), so a second run can say whom it waits for.
The two ingest-folder locks (`partition_lock`, `folder_lock`) and the rule for when each is held are described in
`pipelines.core.partitions`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import naming

LOCKS_DIR = ".locks"


class LockHeld(TesseraUserError):
    """Another live process holds the lock."""


def _holder(handle) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        return "another process"
    if not info.get("pid"):  # the holder is writing its details right now
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')}, since "
            f"{time.strftime('%H:%M:%S', time.localtime(info.get('since', 0)))})")


def lock_path(root: Path, name: str) -> Path:
    """Where the lock file `name` of folder `root` lives."""
    return Path(root) / LOCKS_DIR / f"{name}.lock"


@contextmanager
def exclusive(path: Path, *, what: str, wait: bool = False, poll: float = 0.5) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the duration of the block.

    `wait=False`: if another process holds it, raise LockHeld naming the holder. `wait=True`: block until it is free.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(handle)
                if not wait:
                    raise LockHeld(f"{what} is being written by {holder}; wait for it to finish "
                                   "(or pass --wait), then rerun") from None
                if not announced:
                    print(f"tessera: waiting for {what}, held by {holder}", file=sys.stderr)
                    announced = True
                time.sleep(poll)
        with naming(path):
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "command": " ".join(os.path.basename(a) for a in sys.argv[:2]) or "python",
                                     "since": time.time()}))
            handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


@contextmanager
def partition_lock(out: Path, name: str, *, wait: bool) -> Iterator[None]:
    """Exclusive writing of partition `name` of ingest folder `out` (any track), across processes."""
    with exclusive(lock_path(out, f"partition-{name}"), what=f"partition '{name}' of {out}", wait=wait):
        yield


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """The ingest folder's lock: held while a step reads other partitions' state, allocates shard ids or rewrites
    folder-wide files; always waits (it is held briefly)."""
    with exclusive(lock_path(out, "ingest-folder"), what=f"the ingest folder {out}", wait=True):
        yield


def try_exclusive(path: Path) -> bool:
    """True when nobody holds the lock at `path` right now (used to sweep leftovers of dead runs)."""
    path = Path(path)
    if not path.exists():
        return True
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
