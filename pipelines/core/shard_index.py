"""The finished-unit index of a shard job: "which units are finished" from one file read instead of one per marker.

`<marker_dir>/.finished-index.jsonl` holds one JSON line per committed marker: the unit, the marker file's identity
(inode, size, mtime in ns) and the marker's content. The shard job appends a line after the marker is in place; a
reader that had to read a marker itself appends one too, so a folder written before the index existed (or a line
lost to a crash between marker and line) is indexed on first use.

The markers stay the truth and the index is only a cache of them: a line counts only while its marker still has the
recorded identity, and the files it lists are still checked for their sizes on each read. A marker that is gone is
not listed; a changed or unindexed one is read again. So a stale, duplicated, truncated or foreign line can cost a
marker read, never a wrong answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from pipelines.core.shard_io import atomic_path, remove_temp_copies

INDEX_FILE = ".finished-index.jsonl"
VERSION = 1  # a line of another version (or none) is ignored: its unit's marker is read instead

Entry = tuple[list[int], dict]  # (marker identity, marker content)


def identity(st: os.stat_result) -> list[int]:
    """What must not change for an index line to stand for its marker: a rewrite (rename) changes the inode, an
    in-place edit the mtime, a truncation the size."""
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _line(unit: str, ident: list[int], marker: dict) -> bytes:
    # default=str, as the marker file is written (`write_json_atomic`): the line loads to what the marker loads to
    return json.dumps({"v": VERSION, "unit": unit, "stat": ident, "marker": marker}, sort_keys=True,
                      separators=(",", ":"), default=str).encode() + b"\n"


class FinishedIndex:
    """The append-only index file of one marker folder."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / INDEX_FILE

    def read(self) -> tuple[dict[str, Entry], int]:
        """unit -> (identity, marker) from the last well-formed line of each unit, and how many lines there were."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}, 0
        entries: dict[str, Entry] = {}
        lines = 0
        for raw in data.split(b"\n"):
            if not raw:
                continue
            lines += 1
            try:
                rec = json.loads(raw)
            except ValueError:
                continue  # a line cut short by a crash or a full disk
            if not isinstance(rec, dict) or rec.get("v") != VERSION:
                continue
            unit, ident, marker = rec.get("unit"), rec.get("stat"), rec.get("marker")
            if isinstance(unit, str) and isinstance(marker, dict) and isinstance(ident, list) and len(ident) == 3:
                entries[unit] = (ident, marker)
        return entries, lines

    def append(self, entries: Iterable[tuple[str, list[int], dict]]) -> None:
        """Add lines in one O_APPEND write, so lines of concurrent writers never interleave; best effort."""
        # The leading newline ends a line a killed writer left half-written, so this one still parses.
        data = b"\n" + b"".join(_line(u, i, m) for u, i, m in entries)
        if data == b"\n":
            return
        try:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
                os.fchmod(fd, 0o644)  # world-readable like the markers, whatever the umask
            except FileExistsError:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            pass  # a read-only folder or a full disk: the marker is the truth, it is read instead next time

    def rewrite(self, entries: dict[str, Entry]) -> None:
        """Replace the index with exactly `entries` (atomic; a line appended meanwhile is lost, which costs one marker
        read later); best effort."""
        try:
            remove_temp_copies(self.path)  # a killed rewrite's copy; a racing rewrite's rename then just fails
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(b"".join(_line(u, i, m) for u, (i, m) in sorted(entries.items())))
        except OSError:
            pass
