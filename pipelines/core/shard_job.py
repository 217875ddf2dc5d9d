"""The shard job: the one place that decides when a unit of per-shard output is finished.

A unit (an ingest shard, a scored shard, a caption part, a token shard, an export tar) is finished when its marker
`<marker_dir>/<unit>_stats.json` parses, lists the unit's files with their sizes, and every listed file exists with
that size. Anything else (no marker, an empty or unreadable one, one that disagrees with the files) means "redo".

Writing a unit: take the unit's OS lock (a second run waits, then finds it done), write every output under its fixed
temporary name in its destination folder (replacing a crashed writer's copy of the same name), verify each file by
reading it back (parquet pages, tar members, npy, json) and check the counts the caller expects, rename them into
place, write the marker last, then add its line to the finished-unit index (`pipelines.core.shard_index`). Other
leftovers of crashed runs (names this run does not write, random names of older versions) go in `pending()`'s one
sweep per run: a unit never lists a folder, so its cost does not grow with the folder.
"""

from __future__ import annotations

import json
import os
import tarfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from pipelines.core.errors import TesseraUserError
from pipelines.core.locks import LockHeld, exclusive, lock_path
from pipelines.core.shard_index import FinishedIndex, identity
from pipelines.core.shard_io import TMP_PREFIX, fixed_temp_path, fsync_file, naming, write_json_atomic

MARKER_SUFFIX = "_stats.json"
FILES_KEY = "tessera_files"  # marker field: {path relative to the job root: size in bytes}
COUNTS_KEY = "tessera_counts"  # marker field: {path: rows (parquet) or samples (tar) found when verifying}


class ShardVerificationError(TesseraUserError):
    """A file written for a unit does not read back as complete; the unit stays unfinished."""


def count_items(path: Path) -> int:
    """Read a whole output file back; return its rows (parquet), samples (tar), entries (npy), or 1 (json/other)."""
    path = Path(path)
    suffix = path.name.split(".")[-1] if not path.name.startswith(TMP_PREFIX) else path.name.split(".")[-2]
    try:
        if suffix == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).read().num_rows  # every data page, not just the footer
        if suffix == "tar":
            keys = set()
            with tarfile.open(path) as tar:
                for member in tar:
                    if member.isfile():
                        tar.extractfile(member).read()
                        keys.add(Path(member.name).name.split(".")[0])
            return len(keys)
        if suffix == "npy":
            import numpy as np

            return int(np.load(path, mmap_mode="r").shape[0])
        if suffix == "json":
            json.loads(path.read_text(encoding="utf-8"))
        return 1
    except (OSError, ValueError, EOFError, tarfile.TarError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise
        raise ShardVerificationError(f"{path} does not read back ({type(err).__name__}: {err})") from None


class UnitWriter:
    """Collects one unit's outputs under temporary names; `commit()` verifies, renames and writes the marker."""

    def __init__(self, job: "ShardJob", unit: str) -> None:
        self.job, self.unit = job, unit
        self._staged: dict[str, Path] = {}

    def path(self, rel: str) -> Path:
        """A temporary path to write the output `rel` (relative to the job root) to."""
        tmp = fixed_temp_path(self.job.root / rel)
        self._staged[rel] = tmp
        return tmp

    def adopt(self, staged: Path, rel: str) -> None:
        """Take a file written elsewhere on the same filesystem (img2dataset's staging folder) as output `rel`."""
        tmp = fixed_temp_path(self.job.root / rel)
        os.replace(staged, tmp)
        self._staged[rel] = tmp

    def staged(self, rel: str) -> Path:
        """The temporary file holding output `rel` until commit."""
        return self._staged[rel]

    def parquet(self, table, rel: str) -> None:
        import pyarrow.parquet as pq

        with naming(self.job.root / rel):
            pq.write_table(table, self.path(rel))

    def npy(self, array, rel: str) -> None:
        import numpy as np

        with naming(self.job.root / rel), open(self.path(rel), "wb") as handle:
            np.save(handle, array)

    def commit(self, stats: dict, expect: dict[str, int] | None = None) -> dict:
        """Verify every staged file (and the counts in `expect`), move them into place, write the marker last."""
        files, counts = {}, {}
        for rel, tmp in self._staged.items():
            with naming(self.job.root / rel):
                fsync_file(tmp)
                counts[rel] = count_items(tmp)
            if expect and rel in expect and expect[rel] != counts[rel]:
                raise ShardVerificationError(
                    f"{self.job.root / rel}: {counts[rel]} items written, {expect[rel]} expected"
                )
            files[rel] = tmp.stat().st_size
        for rel, tmp in self._staged.items():
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.job.root / rel)
        marker = {**stats, FILES_KEY: files, COUNTS_KEY: counts}
        path = self.job.marker_path(self.unit)
        write_json_atomic(marker, path, fixed=True)
        self._staged.clear()
        # After the marker: a crash in between leaves a finished unit without a line, which readers repair.
        self.job.index.append([(self.unit, identity(path.stat()), marker)])
        return marker

    def discard(self) -> None:
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged.clear()


class ShardJob:
    """Resumable, atomic, exclusive per-unit writes under `root`, with markers in `root/marker_dir`."""

    def __init__(self, root: Path, marker_dir: str = "") -> None:
        self.root = Path(root)
        self.marker_dir = marker_dir
        self.index = FinishedIndex(self.root / marker_dir)

    def marker_path(self, unit: str) -> Path:
        return self.root / self.marker_dir / f"{unit}{MARKER_SUFFIX}"

    def read_marker(self, unit: str) -> dict | None:
        """The unit's marker if it is complete and agrees with the files on disk, else None (redo the unit)."""
        return self._load(unit)[1]

    def _load(self, unit: str) -> tuple[list[int] | None, dict | None]:
        """(identity, verified marker or None) read from the marker file itself; the identity is taken from the same
        open file before reading, so a marker replaced meanwhile can only make its index line look stale."""
        try:
            with open(self.marker_path(unit), "rb") as handle:
                ident = identity(os.fstat(handle.fileno()))
                marker = json.loads(handle.read())
        except (OSError, ValueError):
            return None, None
        return ident, marker if self._files_agree(marker) else None

    def _files_agree(self, marker) -> bool:
        """The marker lists files, and each exists with the listed size."""
        files = marker.get(FILES_KEY) if isinstance(marker, dict) else None
        if not isinstance(files, dict) or not files:
            return False
        for rel, size in files.items():
            try:
                if (self.root / rel).stat().st_size != size:
                    return False
            except (OSError, TypeError, ValueError):
                return False
        return True

    def _marker_units(self) -> list[str]:
        """Every unit with a marker file in the marker folder (one directory listing), sorted."""
        try:
            with os.scandir(self.root / self.marker_dir) as entries:
                names = [e.name for e in entries if e.name.endswith(MARKER_SUFFIX) and not e.name.startswith(".")]
        except OSError:
            return []
        return sorted(n[: -len(MARKER_SUFFIX)] for n in names)

    def finished(self, verify: bool = False) -> dict[str, dict]:
        """unit id -> marker, for every finished unit of this job, sorted by unit id.

        From the index: one listing of the marker folder, one read of the index, a stat of each marker (it must be the
        one indexed) and of each file it lists (it must have its size); a marker not indexed as it is now is read.
        `verify`: read every marker as if there were no index, and rewrite the index from them."""
        known, lines = ({}, 0) if verify else self.index.read()
        found: dict[str, dict] = {}
        fresh: dict[str, tuple[list[int], dict]] = {}  # unit -> (identity, marker) read from the marker itself
        for unit in self._marker_units():
            entry = known.get(unit)
            if entry is not None:
                try:
                    current = identity(self.marker_path(unit).stat())
                except OSError:
                    continue
                if current == entry[0]:
                    if self._files_agree(entry[1]):
                        found[unit] = entry[1]
                    continue
            ident, marker = self._load(unit)
            if marker is not None:
                found[unit] = marker
                fresh[unit] = (ident, marker)
        if verify or lines > 2 * len(found) + 64:  # rebuilt on demand, or compacted when mostly stale lines
            self.index.rewrite({u: fresh.get(u) or known[u] for u in found})
        elif fresh:
            self.index.append((u, i, m) for u, (i, m) in fresh.items())
        return found

    def pending(self, units: Iterable[str]) -> list[str]:
        """The units not finished yet, after removing leftovers of crashed runs for them (the run's one sweep)."""
        todo = [u for u in units if self.read_marker(u) is None]
        self.sweep(todo)
        return todo

    def _lock(self, unit: str) -> Path:
        return lock_path(self.root, f"{self.marker_dir.replace('/', '-') or 'root'}-{unit}")

    def _owner(self, name: str, units: set[str]) -> str | None:
        """The unit among `units` whose output or marker the temporary file `name` (prefix removed) was copying."""
        for i, ch in enumerate(name):
            if ch == ".":
                head = name[:i]
                if head in units:
                    return head
                if head.endswith(MARKER_SUFFIX) and head[: -len(MARKER_SUFFIX)] in units:
                    return head[: -len(MARKER_SUFFIX)]
        return None

    def sweep(self, units: Iterable[str], *, held: bool = False) -> int:
        """Delete temporary files of `units` that no live process is writing; returns how many went. Lists the root
        and its subfolders once: call it once per run (`pending`), not per unit.

        `held`: the caller holds the units' locks itself (flock conflicts across file handles even in one process, so
        probing the lock again would always report it busy and nothing would be removed)."""
        units = set(units)
        if not units:
            return 0
        removed = 0
        for tmp in list(self.root.glob(f"{TMP_PREFIX}*")) + list(self.root.glob(f"*/{TMP_PREFIX}*")):
            owner = self._owner(tmp.name[len(TMP_PREFIX):], units)
            if owner is None:
                continue
            if held:
                tmp.unlink(missing_ok=True)
                removed += 1
                continue
            try:  # removed while holding the unit's lock: a writer starting now cannot be given this name meanwhile
                with exclusive(self._lock(owner), what=f"unit {owner}", wait=False):
                    tmp.unlink(missing_ok=True)
                    removed += 1
            except LockHeld:
                pass
        return removed

    @contextmanager
    def unit(self, unit: str) -> Iterator[UnitWriter | None]:
        """Hold the unit's lock while writing it; yields None when it is (or became, meanwhile) finished."""
        with exclusive(self._lock(unit), what=f"{self.root / self.marker_dir} unit {unit}", wait=True):
            if self.read_marker(unit) is not None:
                yield None
                return
            writer = UnitWriter(self, unit)
            try:
                yield writer
            finally:
                writer.discard()
