"""Downloads a prepared partition with img2dataset, on the shard ids that the partition owns, through the shard job.

img2dataset's `download()` always numbers shards from 0 (or from the folder's end in "extend" mode, which cannot
resume). We drive its own Reader, Resizer, Downloader and distributors with the partition's start shard id and the
set of finished shards. It writes into a staging folder beside the shards; each shard it completes is verified
(sidecar rows = the shard's input rows, tar samples = sidecar successes = img2dataset's count) and only then moved
into `shards/` with its marker written last. img2dataset's console output goes to a log file; we print a summary.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core import schema as S
from pipelines.core.errors import TesseraEnvironmentError, describe_os_error
from pipelines.core.shard_job import ShardVerificationError
from pipelines.core.shards import ingest_job
from pipelines.core.sql import connect, literal
from pipelines.ingest.fetch import FetchConfig
from pipelines.ingest.img2dataset_log import ConsoleCapture
from pipelines.core.partitions_store import PartitionManifest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import otherwise
STAGING_PREFIX = "_tmp_"


class DownloadConfig(BaseModel):
    """img2dataset settings exposed to users (defaults follow img2dataset, sha256 on, opt-out headers honoured)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Short side 512 keeping the aspect ratio: Emu3 needs >= 512^2 and its own aspect handling; CLIP crops anyway.
    image_size: int = Field(512, ge=8)
    resize_mode: Literal["no", "border", "keep_ratio", "keep_ratio_largest", "center_crop"] = "keep_ratio"
    # Smaller originals are stored as they are: upscaling adds bytes, not detail, and Emu3's preprocessing
    # (`smart_size`) and CLIP's transforms resize small images themselves.
    resize_only_if_bigger: bool = True
    encode_format: Literal["jpg", "png", "webp"] = "jpg"
    encode_quality: int = Field(95, ge=1, le=100)
    processes: int = Field(2, ge=1)
    threads: int = Field(32, ge=1)
    distributor: Literal["multiprocessing", "pyspark", "ray"] = "multiprocessing"
    max_shard_retry: int = Field(1, ge=0)
    # How each URL is fetched: address guards, byte/pixel caps, deadline, retries, politeness (docs/download.md).
    fetch: FetchConfig = Field(default_factory=FetchConfig)


@dataclass
class DownloadResult:
    """What one download run finished, what it could not, and what img2dataset said on the way."""

    finished: set[int]
    failed: dict[int, str] = field(default_factory=dict)  # shard id -> why it is not finished
    log: Path | None = None
    errors: int = 0  # tracebacks img2dataset printed
    cause: str | None = None  # an environment cause found in the log ("no space left on device", ...)


def finished_shard_ids(out: Path, shard_ids) -> set[int]:
    """The ids among `shard_ids` whose marker in `out` is present and agrees with the files (one marker each)."""
    job = ingest_job(out)
    return {s for s in shard_ids if job.read_marker(f"{s:05d}") is not None}


def remove_staging(shard_dir: Path, partition: str) -> None:
    """Remove staging folders of crashed runs of `partition` (call while holding the partition's lock)."""
    for leftover in Path(shard_dir).glob(f"{STAGING_PREFIX}{partition}_*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _img2dataset_input(prepared: Path, target: Path) -> list[str]:
    """Write img2dataset's input: the prepared rows with metadata sizes renamed (img2dataset writes its own)."""
    con = connect()
    con.execute(
        f"COPY (SELECT * RENAME ({S.ORIGINAL_WIDTH} AS {S.META_WIDTH}, {S.ORIGINAL_HEIGHT} AS {S.META_HEIGHT}) "
        f"FROM read_parquet({literal(prepared)})) TO {literal(target)} (FORMAT parquet)"
    )
    return [c for c in pq.read_schema(target).names if c not in (S.URL, S.CAPTION)]


def expected_rows(manifest: PartitionManifest, shard_id: int) -> int:
    """Input rows of one shard of the partition (the last one may be short)."""
    offset = (shard_id - manifest.start_shard_id) * manifest.samples_per_shard
    return max(0, min(manifest.samples_per_shard, manifest.accepted - offset))


def promote_shard(out: Path, staging: Path, manifest: PartitionManifest, shard_id: int) -> None:
    """Verify one shard img2dataset finished in `staging` and move it into `out/shards` (marker last)."""
    name = f"{shard_id:05d}"
    try:
        stats = json.loads((staging / f"{name}_stats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ShardVerificationError(f"shard {name}: img2dataset left no readable stats ({err})") from None
    with ingest_job(out).unit(name) as writer:
        if writer is None:
            return
        for ext in ("tar", "parquet"):
            if not (staging / f"{name}.{ext}").is_file():
                raise ShardVerificationError(f"shard {name}: img2dataset wrote no {name}.{ext}")
            writer.adopt(staging / f"{name}.{ext}", f"{S.SHARDS_DIR}/{name}.{ext}")
        sidecar = f"{S.SHARDS_DIR}/{name}.parquet"
        try:
            status = pq.read_table(writer.staged(sidecar), columns=[S.STATUS])[S.STATUS].to_pylist()
        except (OSError, ValueError) as err:
            raise ShardVerificationError(f"shard {name}: sidecar does not read back ({err})") from None
        rows, successes = expected_rows(manifest, shard_id), status.count(S.STATUS_SUCCESS)
        if stats.get("count") != rows or stats.get("successes") != successes:
            raise ShardVerificationError(
                f"shard {name}: img2dataset counted {stats.get('count')} rows / {stats.get('successes')} successes, "
                f"sidecar has {len(status)} / {successes}, input has {rows}"
            )
        writer.commit(stats, expect={sidecar: rows, f"{S.SHARDS_DIR}/{name}.tar": successes})


class ImageDownloader:
    """Runs img2dataset for one partition into a staging folder and promotes the shards that verify."""

    def __init__(self, config: DownloadConfig | None = None) -> None:
        self.config = config or DownloadConfig()

    def download(self, prepared: Path, out: Path, manifest: PartitionManifest, *, progress: bool = True,
                 log_dir: Path | None = None) -> DownloadResult:
        """Download the partition's unfinished shards; call while holding the partition's lock."""
        out = Path(out).resolve()
        shard_dir = out / S.SHARDS_DIR
        shard_dir.mkdir(parents=True, exist_ok=True)
        remove_staging(shard_dir, manifest.name)
        todo = sorted(int(u) for u in ingest_job(out).pending(f"{s:05d}" for s in manifest.shard_ids))  # + sweep
        result = DownloadResult(finished=set())
        if todo:
            staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{manifest.name}_", dir=shard_dir))
            try:
                capture = ConsoleCapture(log_dir, manifest.name, total=len(todo), watch=staging, progress=progress)
                with capture:
                    self._run(Path(prepared), staging, out, manifest)
                result.log, result.errors, result.cause = capture.log_path, capture.errors, capture.cause
                for sid in todo:
                    try:
                        promote_shard(out, staging, manifest, sid)
                    except ShardVerificationError as err:
                        result.failed[sid] = str(err)
                    except OSError as err:
                        cause = describe_os_error(err)
                        if cause is None:
                            raise
                        where = f"; img2dataset's log: {result.log}" if result.log else ""
                        raise TesseraEnvironmentError(
                            f"{cause} (while moving verified shards of partition '{manifest.name}' into place; "
                            f"shards already moved stay finished){where}; fix that and rerun the same command"
                        ) from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        result.finished = finished_shard_ids(out, manifest.shard_ids)
        for sid in set(manifest.shard_ids) - result.finished - set(result.failed):
            result.failed[sid] = f"shard {sid:05d}: img2dataset did not finish it"
        return result

    def _run(self, prepared: Path, staging: Path, out: Path, manifest: PartitionManifest) -> None:
        from img2dataset.distributor import multiprocessing_distributor, pyspark_distributor, ray_distributor
        from img2dataset.reader import Reader
        from img2dataset.writer import WebDatasetSampleWriter

        from pipelines.ingest.fetch.decode_guard import GuardedResizer
        from pipelines.ingest.fetch.downloader import GuardedDownloader

        cfg = self.config
        feed = staging / "input.parquet"
        extra = _img2dataset_input(prepared, feed)
        reader = Reader(
            str(feed), "parquet", S.URL, S.CAPTION, None, None, extra, manifest.samples_per_shard,
            finished_shard_ids(out, manifest.shard_ids), str(staging), manifest.start_shard_id,
        )
        resizer = GuardedResizer(
            image_size=cfg.image_size, resize_mode=cfg.resize_mode, resize_only_if_bigger=cfg.resize_only_if_bigger,
            encode_quality=cfg.encode_quality, encode_format=cfg.encode_format,
            max_image_pixels=cfg.fetch.max_image_pixels,
        )
        fetch = cfg.fetch
        if cfg.distributor == "ray" and fetch.host_budget == "machine":  # the workers span the cluster's machines
            fetch = fetch.model_copy(update={"host_budget": "cluster"})
        downloader = GuardedDownloader(
            fetch, sample_writer_class=WebDatasetSampleWriter, resizer=resizer, thread_count=cfg.threads,
            save_caption=True, extract_exif=True, output_folder=str(staging), column_list=reader.column_list,
            number_sample_per_shard=manifest.samples_per_shard, oom_shard_count=5, compute_hash="sha256",
            verify_hash_type=None, encode_format=cfg.encode_format, blurring_bbox_col=None,
        )
        distribute = {
            "multiprocessing": multiprocessing_distributor,
            "pyspark": pyspark_distributor,
            "ray": ray_distributor,
        }[cfg.distributor]
        with _distributor_cluster(cfg.distributor):
            distribute(cfg.processes, downloader, reader, 1000, cfg.max_shard_retry)


@contextmanager
def _distributor_cluster(distributor: str):
    """Attach to the cluster the user named before img2dataset's distributor runs: RAY_ADDRESS for Ray (its
    distributor would start a default local Ray), SPARK_MASTER for Spark (its distributor would otherwise start its own
    `local[processes]` session). A Spark session started here is stopped here."""
    if distributor == "ray":
        from pipelines.core.runner import ensure_ray

        ensure_ray()
    if distributor != "pyspark":
        yield
        return
    from pyspark.sql import SparkSession

    from pipelines.core.spark_session import spark_session

    owned = SparkSession.getActiveSession() is None
    spark = spark_session("tessera-ingest")
    try:
        yield
    finally:
        if owned:
            spark.stop()
