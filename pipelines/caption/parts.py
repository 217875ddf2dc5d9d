"""The units of re-captioning work ("parts"): image shards of an ingest folder, or slices of metadata files.

A part has a stable id derived from its input (shard id, or file stem + slice number), so its outputs can be
written atomically and skipped on a rerun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_reader import curated_folder, shard_curated_keys, shard_samples
from pipelines.core.shard_job import ShardJob
from pipelines.core.shards import complete_shards
from pipelines.core.shard_io import read_json, write_json_atomic

RAW_CAPTION = "raw_caption"
SYNTHETIC_CAPTION = "synthetic_caption"
SYNTHETIC_DIR = "synthetic"
CAPTIONS_DIR = "captions"
# CapsFusion-120M column names: raw alt-text and the LAION-COCO synthetic caption.
CAPSFUSION_RAW = "laion_2b"
CAPSFUSION_SYNTHETIC = "laion_coco"


@dataclass(frozen=True)
class Part:
    """One unit of work: an id for its output files and a loader for its input rows."""

    part_id: str
    load: Callable[[], tuple[pa.Table, dict]]  # (rows, counts of inputs skipped while loading)


def part_job(out_dir: Path) -> ShardJob:
    """The shard job whose units are the parts `<part>.parquet` of a synthetic/ or captions/ folder."""
    return ShardJob(out_dir)


def image_shard_parts(ingest_out: Path, curate_out: Path | None, shard_ids=None) -> list[Part]:
    """One part per finished ingest shard (those among `shard_ids` when given): successful samples (key,
    raw_caption, image), only the keys of the shard's own curated/ file when a curation folder is given."""
    curated_folder(curate_out)  # a wrong --curated fails before any work

    def loader(shard):
        def load():
            table, skipped = shard_samples(shard, {}, shard_curated_keys(curate_out, shard.shard_id))
            return table.select([S.KEY, RAW_CAPTION, "image"]), skipped

        return load

    wanted = None if shard_ids is None else set(shard_ids)
    return [Part(shard.shard_id, loader(shard)) for shard in complete_shards(ingest_out)
            if wanted is None or shard.shard_id in wanted]


def synthetic_parts(synthetic_dir: Path) -> list[Part]:
    """One part per finished synthetic-caption shard (the output of the captioning phase)."""
    parts = []
    for part_id in part_job(synthetic_dir).finished():
        path = Path(synthetic_dir) / f"{part_id}.parquet"
        parts.append(Part(part_id, lambda path=path: (pq.read_table(path), {})))
    return parts


def _part_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", Path(path).stem).strip("-") or "part"


def metadata_parts(
    files: list[Path],
    rows_per_part: int,
    raw_column: str = CAPSFUSION_RAW,
    synthetic_column: str = CAPSFUSION_SYNTHETIC,
) -> list[Part]:
    """Slices of CapsFusion-style parquet files with a raw and a synthetic caption column (no images).

    Keys come from a `key` column when there is one, else `<stem>-<row:09d>`; part ids are `<stem>-<slice:05d>`.
    """
    parts = []
    for f in files:
        f = Path(f)
        if not f.is_file():
            raise TesseraUserError(f"--input {f} does not exist")
        try:
            meta = pq.ParquetFile(f).metadata
            names = set(pq.read_schema(f).names)
        except (OSError, pa.ArrowInvalid) as err:
            raise TesseraUserError(f"--input {f} is not a readable parquet file ({err})") from err
        for col, opt in ((raw_column, "--raw-column"), (synthetic_column, "--synthetic-column")):
            if col not in names:
                raise TesseraUserError(f"{f} has no column {col!r} (set {opt})")
        stem = _part_stem(f)
        for n, start in enumerate(range(0, meta.num_rows, rows_per_part)):
            parts.append(Part(f"{stem}-{n:05d}", _metadata_loader(f, stem, start, rows_per_part, raw_column,
                                                                  synthetic_column, S.KEY in names)))
    ids = [p.part_id for p in parts]
    if len(set(ids)) != len(ids):
        raise TesseraUserError("two --input files have the same name; rename one so their outputs do not collide")
    return parts


def _metadata_loader(path, stem, start, length, raw_col, syn_col, has_key):
    def load():
        cols = [raw_col, syn_col] + ([S.KEY] if has_key else [])
        table = pq.read_table(path, columns=cols).slice(start, length)
        if has_key:
            keys = pa.array([str(k) for k in table.column(S.KEY).to_pylist()], pa.string())
        else:
            keys = pa.array([f"{stem}-{start + i:09d}" for i in range(table.num_rows)], pa.string())
        return pa.table({
            S.KEY: keys,
            RAW_CAPTION: table.column(raw_col).cast(pa.string()),
            SYNTHETIC_CAPTION: table.column(syn_col).cast(pa.string()),
        }), {}

    return load


def input_identity(path: Path) -> dict:
    """What names one input file in a manifest: its resolved path, size and modification time."""
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def claim_metadata_inputs(out_dir: Path, rows_per_part: int, files: list[Path]) -> None:
    """Refuse inputs that would be confused with earlier ones in `out_dir`, then record them in its manifest.json.

    Part ids are `<stem>-<slice>` and finished parts are skipped, so the slicing must match, and an input whose
    stem the manifest knows must be the very same file (path, size, mtime); new stems are added, none replaced.
    """
    path = Path(out_dir) / "manifest.json"
    manifest = read_json(path, default=None) or {}
    if manifest and manifest.get("rows_per_part") != rows_per_part:
        raise TesseraUserError(
            f"{out_dir} was written with --rows-per-part {manifest.get('rows_per_part')}; use the same value to resume"
        )
    known = manifest.get("inputs", {})
    if isinstance(known, list):  # older manifests listed the paths only
        known = {_part_stem(p): {"path": str(Path(p).resolve())} for p in known}
    claimed = dict(known)
    for f in files:
        stem, ident = _part_stem(f), input_identity(f)
        was = claimed.setdefault(stem, ident)
        changed = [k for k in was if was[k] != ident.get(k)]
        if changed:
            what = "another file" if "path" in changed else f"changed since ({', '.join(changed)} differ)"
            raise TesseraUserError(
                f"--input {f} is {what}: {out_dir} already holds parts {stem}-* from {was['path']}; "
                "use another --out or rename the input"
            )
    if claimed != manifest.get("inputs"):
        write_json_atomic({"rows_per_part": rows_per_part, "inputs": claimed}, path)
