"""The ingest sequence, called by both `tessera ingest` and the Dagster assets:

`prepare_partition` (validate, canonicalise, reject bad/duplicate URLs, allocate shard ids), then `download_partition`
(img2dataset into verified shards, `sizes.json`). Prepare is the core partition driver
(`pipelines.core.partitions`, which also states when the partition and folder locks are held) with the pair
classify step (`pipelines.ingest.metadata_preparer`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterable

from pipelines.core import schema as S
from pipelines.core.errors import TesseraEnvironmentError, TesseraUserError
from pipelines.core.locks import folder_lock, partition_lock
from pipelines.core.partitions import prepare_partition as prepare_core_partition
from pipelines.core.partitions_store import PartitionManifest
from pipelines.core.shard_io import remove_temp_copies, write_json_atomic
from pipelines.core.shards import ingest_job
from pipelines.ingest.image_downloader import DownloadConfig, DownloadResult, ImageDownloader
from pipelines.ingest.metadata_preparer import MetadataPreparer
from pipelines.ingest.partitions import PAIR_PARTITIONS, prepared_file
from pipelines.ingest.sources import get_source, validate_files

LOGS_DIR = "logs"


def _sizes_files(out: Path) -> tuple[Path, Path]:
    return Path(out) / S.SIZES_FILE, Path(out) / S.SHARDS_DIR / S.SIZES_FILE


def _read_sizes(out: Path) -> dict[str, int] | None:
    """The sizes both files hold, or None when either is missing, unreadable, malformed or they disagree."""
    found = []
    for path in _sizes_files(out):
        try:
            sizes = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(sizes, dict) or not all(type(n) is int for n in sizes.values()):
            return None
        found.append(sizes)
    return found[0] if found[0] == found[1] else None


def write_sizes(out: Path, shard_ids: Iterable[int] | None = None) -> dict[str, int]:
    """`OUT/sizes.json` and `OUT/shards/sizes.json` (open_clip reads the one beside the tars): shard tar name ->
    successful samples. Given `shard_ids` (a partition's), only their entries are replaced in the existing files (one
    marker read each); without, or when the files cannot be used, both are rebuilt from every marker."""
    out = Path(out)
    job = ingest_job(out)
    with folder_lock(out):  # every writer of the two files holds it, so merges of two partitions never lose one
        remove_temp_copies(*_sizes_files(out))
        sizes = None if shard_ids is None else _read_sizes(out)
        if sizes is None:
            sizes = {f"{sid}.tar": int(marker["successes"]) for sid, marker in job.finished().items()}
        else:
            for sid in (f"{s:05d}" for s in shard_ids):
                marker = job.read_marker(sid)
                if marker is None:
                    sizes.pop(f"{sid}.tar", None)
                else:
                    sizes[f"{sid}.tar"] = int(marker["successes"])
            sizes = dict(sorted(sizes.items()))
        for path in _sizes_files(out):
            write_json_atomic(sizes, path)  # sorted keys: a merge and a rebuild of the same shards write equal bytes
    return sizes


def rebuild_sizes(out: Path) -> dict[str, int]:
    """Rewrite both `sizes.json` files from every finished shard's marker (the repair of a merged file)."""
    return write_sizes(out, None)


def prepare_partition(source: str, files: list[Path], out: Path, *, partition: str | None = None,
                      samples_per_shard: int = 10_000, wait: bool = False) -> PartitionManifest:
    """Validate inputs and options, then canonicalise and classify the partition (reused if done before)."""
    if samples_per_shard < 1:
        raise TesseraUserError(f"--samples-per-shard must be at least 1 (got {samples_per_shard})")
    files = [Path(f) for f in files]
    validate_files(files, get_source(source))
    preparer = MetadataPreparer(out, samples_per_shard)
    return prepare_core_partition(
        PAIR_PARTITIONS, files, out, source=get_source(source).name, partition=partition, wait=wait,
        before=preparer.check_folder, classify=preparer.step(source, files))


def partition_manifest(out: Path, name: str) -> PartitionManifest:
    """The manifest of a prepared partition, or a user error."""
    manifest = PAIR_PARTITIONS.get(out, name)
    if manifest is None:
        raise TesseraUserError(f"partition '{name}' of {out} is not prepared yet (run its metadata step first)")
    return manifest


def _warn(message: str) -> None:
    print(f"tessera: warning: {message}", file=sys.stderr)


def download_partition(out: Path, manifest: PartitionManifest, config: DownloadConfig | None = None, *,
                       wait: bool = False, progress: bool = True, warn=_warn) -> DownloadResult:
    """Download the partition's unfinished shards and refresh `sizes.json`; raise when shards are left unfinished."""
    out = Path(out)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    with partition_lock(out, manifest.name, wait=wait):
        result = ImageDownloader(config).download(
            prepared_file(out, manifest.name), out, manifest, progress=progress,
            log_dir=out / LOGS_DIR,
        )
    write_sizes(out, manifest.shard_ids)
    if result.errors:
        warn(f"img2dataset reported {result.errors} errors while downloading partition '{manifest.name}' "
             f"(log: {result.log})")
    if result.failed:
        first = result.failed[min(result.failed)]
        where = f"; img2dataset's log: {result.log}" if result.log else ""
        if result.cause:
            raise TesseraEnvironmentError(
                f"{result.cause} while writing {out / S.SHARDS_DIR}: {len(result.failed)} of {manifest.n_shards} "
                f"shards of partition '{manifest.name}' are not finished ({first}){where}; "
                "fix that and rerun the same command to resume"
            )
        raise TesseraUserError(
            f"{len(result.failed)} of {manifest.n_shards} shards of partition '{manifest.name}' did not finish "
            f"({first}){where}; rerun the same command to resume"
        )
    return result


def ingest(source: str, files: list[Path], out: Path, *, partition: str | None = None,
           download: DownloadConfig | None = None, samples_per_shard: int = 10_000, wait: bool = False,
           progress: bool = True) -> PartitionManifest:
    """Ingest `files` as one partition of `out`; rerunning the same call resumes and never duplicates rows."""
    manifest = prepare_partition(source, files, out, partition=partition, samples_per_shard=samples_per_shard,
                                 wait=wait)
    download_partition(out, manifest, download, wait=wait, progress=progress)
    return manifest
