"""Downloads a prepared partition with img2dataset into `OUT/shards`, on the shard ids that the partition owns.

img2dataset's `download()` always numbers shards from 0 (or from the folder's end in "extend" mode, which cannot
resume). We drive its own Reader, Resizer, Downloader and distributors with the partition's start shard id and the
set of finished shards, so a rerun skips what is done and keys stay unique across partitions.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core import schema as S
from pipelines.ingest.partitions import PartitionManifest
from pipelines.core.sql import connect, literal

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import otherwise


class DownloadConfig(BaseModel):
    """img2dataset settings exposed to users (defaults follow img2dataset, sha256 on, opt-out headers honoured)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Short side 512 keeping the aspect ratio: Emu3 needs >= 512^2 and its own aspect handling; CLIP crops anyway.
    image_size: int = Field(512, ge=8)
    resize_mode: Literal["no", "border", "keep_ratio", "keep_ratio_largest", "center_crop"] = "keep_ratio"
    resize_only_if_bigger: bool = False
    encode_format: Literal["jpg", "png", "webp"] = "jpg"
    encode_quality: int = Field(95, ge=1, le=100)
    processes: int = Field(2, ge=1)
    threads: int = Field(32, ge=1)
    retries: int = Field(0, ge=0)
    timeout: int = Field(10, ge=1)
    distributor: Literal["multiprocessing", "pyspark", "ray"] = "multiprocessing"
    user_agent_token: str | None = "tessera"
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    max_shard_retry: int = Field(1, ge=0)


def finished_shard_ids(shard_dir: Path) -> set[int]:
    """Shard ids whose `_stats.json` (img2dataset's completion marker) exists."""
    return {int(p.name.split("_")[0]) for p in Path(shard_dir).glob("*_stats.json")}


def _img2dataset_input(prepared: Path, target: Path) -> list[str]:
    """Write img2dataset's input: the prepared rows with metadata sizes renamed (img2dataset writes its own)."""
    con = connect()
    con.execute(
        f"COPY (SELECT * RENAME ({S.ORIGINAL_WIDTH} AS {S.META_WIDTH}, {S.ORIGINAL_HEIGHT} AS {S.META_HEIGHT}) "
        f"FROM read_parquet({literal(prepared)})) TO {literal(target)} (FORMAT parquet)"
    )
    return [c for c in pq.read_schema(target).names if c not in (S.URL, S.CAPTION)]


class ImageDownloader:
    """Runs img2dataset for one partition; returns the shard ids that are finished afterwards."""

    def __init__(self, config: DownloadConfig | None = None) -> None:
        self.config = config or DownloadConfig()

    def download(self, prepared: Path, shard_dir: Path, manifest: PartitionManifest) -> set[int]:
        """Download the partition's missing shards into `shard_dir`."""
        shard_dir = Path(shard_dir).resolve()
        shard_dir.mkdir(parents=True, exist_ok=True)
        todo = set(manifest.shard_ids) - finished_shard_ids(shard_dir)
        if todo:
            self._run(Path(prepared), shard_dir, manifest)
        return finished_shard_ids(shard_dir) & set(manifest.shard_ids)

    def _run(self, prepared: Path, shard_dir: Path, manifest: PartitionManifest) -> None:
        from img2dataset.distributor import multiprocessing_distributor, pyspark_distributor, ray_distributor
        from img2dataset.downloader import Downloader
        from img2dataset.reader import Reader
        from img2dataset.resizer import Resizer
        from img2dataset.writer import WebDatasetSampleWriter

        cfg = self.config
        work = Path(tempfile.mkdtemp(prefix=f"_tmp_{manifest.name}_", dir=shard_dir))
        try:
            feed = work / "input.parquet"
            extra = _img2dataset_input(prepared, feed)
            done = finished_shard_ids(shard_dir)
            reader = Reader(
                str(feed), "parquet", S.URL, S.CAPTION, None, None, extra, manifest.samples_per_shard,
                done, str(work), manifest.start_shard_id,
            )
            resizer = Resizer(
                image_size=cfg.image_size, resize_mode=cfg.resize_mode,
                resize_only_if_bigger=cfg.resize_only_if_bigger, encode_quality=cfg.encode_quality,
                encode_format=cfg.encode_format,
            )
            downloader = Downloader(
                sample_writer_class=WebDatasetSampleWriter, resizer=resizer, thread_count=cfg.threads,
                save_caption=True, extract_exif=True, output_folder=str(shard_dir), column_list=reader.column_list,
                timeout=cfg.timeout, number_sample_per_shard=manifest.samples_per_shard, oom_shard_count=5,
                compute_hash="sha256", verify_hash_type=None, encode_format=cfg.encode_format, retries=cfg.retries,
                user_agent_token=cfg.user_agent_token,
                disallowed_header_directives=list(cfg.disallowed_header_directives) or None,
                blurring_bbox_col=None,
            )
            distribute = {
                "multiprocessing": multiprocessing_distributor,
                "pyspark": pyspark_distributor,
                "ray": ray_distributor,
            }[cfg.distributor]
            distribute(cfg.processes, downloader, reader, 1000, cfg.max_shard_retry)
        finally:
            shutil.rmtree(work, ignore_errors=True)
