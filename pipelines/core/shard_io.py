"""Atomic, resumable per-shard writes: write to a temporary name, then rename; the stats file goes last."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _atomic_target(path: Path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return path, Path(tmp)


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write `table` to `path` so that readers see either nothing or the whole file."""
    path, tmp = _atomic_target(path)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(obj, path: Path) -> Path:
    """Write `obj` as pretty JSON to `path` atomically (used for stats files, the completion markers)."""
    path, tmp = _atomic_target(path)
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_json(path: Path, default=None):
    """Read a JSON file, or return `default` when it does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def shard_id_of(path: Path) -> str:
    """The shard id a file belongs to: `00012` for `00012.tar`, `00012.parquet` or `00012_stats.json`."""
    return Path(path).name.split(".")[0].split("_")[0]
