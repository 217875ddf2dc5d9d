"""Atomic file writes: write under a temporary name in the destination folder, flush to disk, then rename.

Every temporary file starts with `TMP_PREFIX` and names its target, so a later run can find and remove the leftovers
of a crashed one (see `pipelines.core.shard_job`). A writer that holds the lock every writer of a file takes (a shard
job unit) uses the fixed name `fixed_temp_path` gives, so the next writer replaces a dead one's copy by name, without
listing the folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import errno_in_text

TMP_PREFIX = ".tessera-tmp."
FIXED_TMP_SUFFIX = "w"  # no dot: `count_items` reads the target's extension as the second-to-last dotted part


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside `path` (same folder, so the final rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def fixed_temp_path(path: Path) -> Path:
    """The one temporary name of `path` for a writer holding its lock: a dead writer's copy there is removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{path.name}.{FIXED_TMP_SUFFIX}"
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # private until renamed, as mkstemp's
    return tmp


def fsync_file(path: Path) -> None:
    """Flush a written file to disk, so a full disk shows up now and not after the rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an OSError raised inside the block the file name it lacks (writes and fsync report none)."""
    try:
        yield
    except OSError as err:
        code = err.errno if err.errno is not None else errno_in_text(str(err))
        if code is not None and not err.filename:
            raise OSError(code, os.strerror(code), str(path)) from err
        raise


@contextmanager
def atomic_path(path: Path, *, fixed: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is synced, made world-readable and renamed to `path`.

    `fixed`: the caller holds the lock every writer of `path` takes, so the temporary name is `fixed_temp_path`'s."""
    path = Path(path)
    with naming(path):
        tmp = fixed_temp_path(path) if fixed else temp_path(path)
    try:
        with naming(path):
            yield tmp
            fsync_file(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write `table` to `path` so that readers see either nothing or the whole file."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def write_json_atomic(obj, path: Path, *, fixed: bool = False) -> Path:
    """Write `obj` as pretty JSON to `path` atomically (used for stats files, the completion markers)."""
    with atomic_path(path, fixed=fixed) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return Path(path)


def remove_temp_copies(*paths: Path) -> None:
    """Delete temporary copies of `paths` that a crashed writer left; call it holding the lock every writer of those
    files takes, so no live writer's copy can be among them."""
    for path in map(Path, paths):
        for leftover in path.parent.glob(f"{TMP_PREFIX}{path.name}.*"):
            leftover.unlink(missing_ok=True)


def read_json(path: Path, default=None):
    """Read a JSON file, or return `default` when it does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))

