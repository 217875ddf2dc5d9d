"""`tessera ingest`: metadata files -> canonical rows -> rejects ledger + img2dataset webdataset shards + sizes.json."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.ingest.image_downloader import DownloadConfig, ImageDownloader
from pipelines.ingest.metadata_preparer import MetadataPreparer
from pipelines.ingest.partitions import (
    PartitionManifest, check_partition_name, dataset_samples_per_shard, locked, partition_name,
)
from pipelines.core.shard_io import read_json, write_json_atomic
from pipelines.ingest.sources import get_source, validate_files


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


def write_sizes(out: Path) -> dict[str, int]:
    """`OUT/sizes.json`: shard basename -> successful samples, as open_clip's webdataset loader expects."""
    shard_dir = Path(out) / S.SHARDS_DIR
    sizes = {
        f"{p.name.split('_')[0]}.tar": int(read_json(p)["successes"]) for p in sorted(shard_dir.glob("*_stats.json"))
    }
    write_json_atomic(sizes, Path(out) / S.SIZES_FILE)
    return sizes


def ingest(
    source: str,
    files: list[Path],
    out: Path,
    *,
    partition: str | None = None,
    download: DownloadConfig | None = None,
    samples_per_shard: int = 10_000,
) -> PartitionManifest:
    """Ingest `files` as one partition of `out`; rerunning the same call resumes and never duplicates rows."""
    if samples_per_shard < 1:
        raise TesseraUserError(f"--samples-per-shard must be at least 1 (got {samples_per_shard})")
    files = [Path(f) for f in files]
    validate_files(files, get_source(source))
    name = check_partition_name(partition) if partition else partition_name(files)
    out = check_writable(out)
    with locked(out):
        samples_per_shard = dataset_samples_per_shard(out, samples_per_shard)
    manifest = MetadataPreparer(out, samples_per_shard).prepare(source, files, name)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    finished = ImageDownloader(download).download(
        out / S.PREPARED_DIR / f"{name}.parquet", out / S.SHARDS_DIR, manifest
    )
    with locked(out):
        write_sizes(out)
    missing = set(manifest.shard_ids) - finished
    if missing:
        raise TesseraUserError(
            f"{len(missing)} of {manifest.n_shards} shards of partition '{name}' did not finish "
            f"(first: {min(missing):05d}); rerun the same command to resume"
        )
    return manifest
