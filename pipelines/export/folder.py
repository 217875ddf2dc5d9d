"""An export folder: one or more exports, each naming its tars `<export id>-NNNNN.tar`, and one `sizes.json` for all.

open_clip_train sizes a `--train-data 'A::B'` mix from the `sizes.json` in the folder of the FIRST shard only, and
looks every shard of every part up there by its base name. So tar names must never collide between exports (the id
is a hash of the export's inputs and settings, or the user's `--name`), and exports meant to be mixed go into one
folder, whose `sizes.json` lists the tars of every export in it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Iterable

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.locks import exclusive, lock_path
from pipelines.core.shard_io import read_json, remove_temp_copies, write_json_atomic
from pipelines.core.shard_job import FILES_KEY, MARKER_SUFFIX, ShardJob

INDEX = "export_manifest.json"  # {"exports": {export id: that export's manifest}}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHARD = re.compile(r"(?:(?P<id>.+)-)?(?P<num>\d{5,})\.tar")  # no id: an export written before ids existed


def check_export_name(name: str) -> str:
    """A user-chosen export id: it ends up in tar names and in open_clip's brace and `::` patterns."""
    if not _NAME.fullmatch(name):
        raise TesseraUserError(f"--name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter "
                               "or digit (it becomes part of every tar name)")
    return name


def fingerprint(parts: Iterable) -> str:
    """A hex digest of JSON-serialisable parts, in order (what the export was made from)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def unit_name(export_id: str, number: int) -> str:
    """The shard job unit (and tar base name) of an export's shard `number`."""
    return f"{export_id}-{number:05d}"


def _units(job: ShardJob) -> dict[str, str | None]:
    """unit -> export id, for every export shard marker in the folder (finished or not)."""
    names = (p.name[: -len(MARKER_SUFFIX)] for p in job.root.glob(f"*{MARKER_SUFFIX}"))
    return {u: m["id"] for u in sorted(names) if (m := _SHARD.fullmatch(f"{u}.tar"))}


def _units_of(job: ShardJob, export_id: str) -> list[str]:
    return [u for u, i in _units(job).items() if i == export_id]


def remove_stale_units(job: ShardJob, export_id: str, fp: str) -> int:
    """Delete the shards of `export_id` made from other inputs or settings (a reused `--name`); returns how many."""
    removed = 0
    for unit in _units_of(job, export_id):
        marker = read_json(job.marker_path(unit), default={})
        if isinstance(marker, dict) and marker.get("fingerprint") == fp:
            continue
        job.marker_path(unit).unlink(missing_ok=True)  # marker first: a half-removed unit reads as unfinished
        for rel in (marker.get(FILES_KEY) or {}) if isinstance(marker, dict) else {}:
            (job.root / rel).unlink(missing_ok=True)
        removed += 1
    return removed


def read_index(out: Path) -> dict[str, dict]:
    """export id -> manifest of the exports finished in `out` (an index of another format reads as empty)."""
    index = read_json(Path(out) / INDEX, default={})
    exports = index.get("exports") if isinstance(index, dict) else None
    return exports if isinstance(exports, dict) else {}


def is_complete(job: ShardJob, manifest: dict) -> bool:
    """Every tar the export's manifest lists is there and verified."""
    return all(job.read_marker(tar[: -len(".tar")]) is not None for tar in manifest.get("sizes", {}))


def register(job: ShardJob, manifest: dict) -> dict[str, dict]:
    """Add a finished export to the folder's index and rewrite `sizes.json` for every complete export in it."""
    out = job.root
    with exclusive(lock_path(out, "export-index"), what=f"the export index of {out}", wait=True):
        remove_temp_copies(out / INDEX, out / S.SIZES_FILE)  # every writer of the two holds this lock
        index = {i: m for i, m in read_index(out).items() if i != manifest["id"] and is_complete(job, m)}
        for unit in _units(job):  # markers whose tar is gone (an export whose tars were deleted) only mislead
            if job.read_marker(unit) is None and not (out / f"{unit}.tar").exists():
                job.marker_path(unit).unlink(missing_ok=True)
        index[manifest["id"]] = manifest
        sizes = {tar: n for m in index.values() for tar, n in m["sizes"].items()}
        write_json_atomic({"exports": index}, out / INDEX)
        write_json_atomic(sizes, out / S.SIZES_FILE)
    return index


def brace_pattern(folder: Path, export_id: str | None, shards: int) -> str:
    """open_clip's `--train-data` pattern for one export's tars."""
    return f"{folder}/{export_id + '-' if export_id else ''}{{00000..{max(shards - 1, 0):05d}}}.tar"


def train_data(folder: Path) -> tuple[str, int]:
    """`--train-data` for every export in `folder` (joined with `::`), and their sample count, from sizes.json."""
    folder = Path(folder).resolve()
    sizes = read_json(folder / S.SIZES_FILE)
    if not sizes:
        raise TesseraUserError(f"{folder} has no sizes.json: is it a `tessera export-eva-clip` output?")
    numbers: dict[str | None, list[int]] = {}
    for tar in sizes:
        m = _SHARD.fullmatch(tar)
        if m is None:
            raise TesseraUserError(f"{folder}/sizes.json lists {tar!r}, not an export's `<id>-NNNNN.tar`")
        numbers.setdefault(m["id"], []).append(int(m["num"]))
    for export_id, nums in numbers.items():
        if sorted(nums) != list(range(len(nums))):
            raise TesseraUserError(f"{folder}/sizes.json does not list consecutive shards "
                                   f"{unit_name(export_id, 0) if export_id else '00000'}.tar..")
    parts = [brace_pattern(folder, i, len(n)) for i, n in sorted(numbers.items(), key=lambda kv: kv[0] or "")]
    return "::".join(parts), sum(int(n) for n in sizes.values())
