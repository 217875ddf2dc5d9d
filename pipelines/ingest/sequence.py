"""The ingest sequence, called by both `tessera ingest` and the Dagster assets:

`prepare_partition` (validate, canonicalise, reject bad/duplicate URLs, allocate shard ids), then `download_partition`
(img2dataset into verified shards, `sizes.json`). Each step holds the partition's OS lock while it writes, so a second
run on the same partition waits (`wait=True`, Dagster) or stops with one line naming the holder (the CLI's default).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

from pipelines.core import schema as S
from pipelines.core.errors import TesseraEnvironmentError, TesseraUserError
from pipelines.core.locks import exclusive, lock_path
from pipelines.core.shard_io import remove_temp_copies, write_json_atomic
from pipelines.core.shards import ingest_job
from pipelines.ingest.image_downloader import DownloadConfig, DownloadResult, ImageDownloader
from pipelines.ingest.metadata_preparer import MetadataPreparer
from pipelines.ingest.partitions import (
    PartitionManifest, check_partition_name, dataset_samples_per_shard, load_manifests, locked, partition_name,
)
from pipelines.ingest.sources import get_source, validate_files

LOGS_DIR = "logs"


def check_writable(out: Path) -> Path:
    """Create `out` if needed and make sure we can write there; a user error otherwise."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise TesseraUserError(f"cannot write to output folder {out}: {err.strerror or err}") from None
    return out


@contextmanager
def partition_lock(out: Path, name: str, *, wait: bool):
    """Exclusive writing of partition `name` of `out`, across processes, for the duration of the block."""
    with exclusive(lock_path(out, f"partition-{name}"), what=f"partition '{name}' of {out}", wait=wait):
        yield


def write_sizes(out: Path) -> dict[str, int]:
    """`OUT/sizes.json` and `OUT/shards/sizes.json`: shard tar name -> successful samples (open_clip reads the one
    beside the tars)."""
    sizes = {f"{sid}.tar": int(marker["successes"]) for sid, marker in ingest_job(out).finished().items()}
    with locked(Path(out)):
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
    name = check_partition_name(partition) if partition else partition_name(files)
    out = check_writable(out)
    with partition_lock(out, name, wait=wait):
        with locked(out):
            samples_per_shard = dataset_samples_per_shard(out, samples_per_shard)
        return MetadataPreparer(out, samples_per_shard).prepare(source, files, name)


def partition_manifest(out: Path, name: str) -> PartitionManifest:
    """The manifest of a prepared partition, or a user error."""
    manifest = next((m for m in load_manifests(out) if m.name == name), None)
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
            out / S.PREPARED_DIR / f"{manifest.name}.parquet", out, manifest, progress=progress,
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
