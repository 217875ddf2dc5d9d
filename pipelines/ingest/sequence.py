"""The ingest sequence, called by both `tessera ingest` and the Dagster assets:

`prepare_partition` (validate, canonicalise, reject bad/duplicate URLs, allocate shard ids), then `download_partition`
(img2dataset into verified shards, `sizes.json`). Prepare is the core partition driver
(`pipelines.core.partitions`, which also states when the partition and folder locks are held) with the pair
classify step (`pipelines.ingest.metadata_preparer`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def write_sizes(out: Path) -> dict[str, int]:
    """`OUT/sizes.json` and `OUT/shards/sizes.json`: shard tar name -> successful samples (open_clip reads the one
    beside the tars)."""
    sizes = {f"{sid}.tar": int(marker["successes"]) for sid, marker in ingest_job(out).finished().items()}
    with folder_lock(Path(out)):
        remove_temp_copies(Path(out) / S.SIZES_FILE, Path(out) / S.SHARDS_DIR / S.SIZES_FILE)  # writers hold this lock
        write_json_atomic(sizes, Path(out) / S.SIZES_FILE)
        write_json_atomic(sizes, Path(out) / S.SHARDS_DIR / S.SIZES_FILE)
    return sizes


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
    write_sizes(out)
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
