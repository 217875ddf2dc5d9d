"""`tessera ingest --source webvid|panda70m`: video rows into rejects and prepared rows, then clips into shards.

`prepare_video` reads the partition's files once (the core partition driver, `pipelines.core.partitions`: under the
partition's lock and the ingest folder's lock, as every track) and writes `OUT/video/<p>.rejects.parquet`,
`OUT/video/<p>.prepared.parquet` (one parquet row group per output shard) and last `OUT/video/<p>.json`, which
allocates the partition's range of clip shard ids (their own range, beside image shards). A URL already accepted
by this or an earlier video partition is rejected as `duplicate_url`. `download_video` (pipelines.video.download)
then writes `OUT/clips/NNNNN.*`. Layout and names: `pipelines.video.schema` and `pipelines.video.partitions`.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import TesseraEnvironmentError, TesseraUserError, describe_os_error
from pipelines.core.partitions import prepare_partition
from pipelines.core.partitions_store import Option, earlier_keys, flag
from pipelines.core.rejects import REJECT_SCHEMA, Reject
from pipelines.core.shard_io import atomic_path
from pipelines.video import schema as V
from pipelines.video.download import VideoDownloadConfig, download_video
from pipelines.video.partitions import (
    VIDEO_ENDINGS, VIDEO_PARTITIONS, VideoManifest, clips_job, prepared_file, video_file,
)
from pipelines.video.sources import check_video_files, read_videos

CLIP_TYPE = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("caption", pa.string()),
                       ("extra", pa.string())])
PREPARED_SCHEMA = pa.schema([("input_file", pa.string()), ("input_row", pa.int64()), ("video_id", pa.string()),
                             ("url", pa.string()), ("clips", pa.list_(CLIP_TYPE)), ("extra", pa.string())])
DEFAULT_SAMPLES_PER_SHARD = 1000  # video2dataset's number_sample_per_shard
MAX_SAMPLES_PER_SHARD = 10_000  # the key has four digits for the row in its shard


def _parse(source: str, files: list[Path], out: Path, name: str, samples_per_shard: int) -> VideoManifest:
    """Read every row once; write the rejects and the accepted rows (one row group per shard), then the manifest."""
    seen = earlier_keys(VIDEO_PARTITIONS, out, prepared_file, "url")
    counts = Counter()
    with atomic_path(video_file(out, name, "rejects")) as rej_tmp, \
            atomic_path(video_file(out, name, "prepared")) as prep_tmp:
        with pq.ParquetWriter(rej_tmp, REJECT_SCHEMA) as rej_w, pq.ParquetWriter(prep_tmp, PREPARED_SCHEMA) as prep_w:
            rejects, shard = [], []
            for record in read_videos(source, files):
                if not isinstance(record, Reject) and record.url in seen:
                    record = Reject(record.input_file, record.input_row, V.DUPLICATE_URL,
                                    f"first accepted at {seen[record.url]}"[:200])
                if isinstance(record, Reject):
                    rejects.append(record.__dict__)
                    counts["rejected"] += 1
                else:
                    seen[record.url] = f"{record.input_file}#{record.input_row}"
                    shard.append(record.__dict__)
                    counts["accepted"] += 1
                    counts["clips"] += len(record.clips)
                if len(shard) == samples_per_shard:  # one row group per output shard
                    prep_w.write_table(pa.Table.from_pylist(shard, PREPARED_SCHEMA))
                    shard = []
                if len(rejects) >= 4096:
                    rej_w.write_table(pa.Table.from_pylist(rejects, REJECT_SCHEMA))
                    rejects = []
            if shard:
                prep_w.write_table(pa.Table.from_pylist(shard, PREPARED_SCHEMA))
            rej_w.write_table(pa.Table.from_pylist(rejects, REJECT_SCHEMA))
    return VideoManifest(
        name=name, source=source, files=[str(Path(f).resolve()) for f in files],
        input_rows=counts["accepted"] + counts["rejected"], accepted=counts["accepted"], rejected=counts["rejected"],
        clips=counts["clips"], start_shard_id=VIDEO_PARTITIONS.next_shard_id(out),
        n_shards=math.ceil(counts["accepted"] / samples_per_shard), samples_per_shard=samples_per_shard)


def _classify(source: str, files: list[Path], samples_per_shard: int):
    def classify(out: Path, name: str) -> VideoManifest:
        try:
            return _parse(source, files, out, name, samples_per_shard)
        except OSError as err:
            cause = describe_os_error(err)
            if cause is None:
                raise
            raise TesseraEnvironmentError(f"{cause} (while preparing video partition '{name}'); fix that "
                                         "and rerun the same command") from None
    return classify


def prepare_video(source: str, files: list[Path], out: Path, *, partition: str | None = None,
                  samples_per_shard: int = DEFAULT_SAMPLES_PER_SHARD, wait: bool = False) -> VideoManifest:
    """Validate the inputs, then read and classify the partition's rows (reused if done before)."""
    if not 1 <= samples_per_shard <= MAX_SAMPLES_PER_SHARD:
        raise TesseraUserError(f"--samples-per-shard must be between 1 and {MAX_SAMPLES_PER_SHARD} for video "
                               f"(got {samples_per_shard})")
    files = [Path(f) for f in files]
    check_video_files(source, files)
    return prepare_partition(
        VIDEO_PARTITIONS, files, out, source=source, partition=partition, endings=VIDEO_ENDINGS, wait=wait,
        options=[Option("samples_per_shard", samples_per_shard, flag("--samples-per-shard"))],
        classify=_classify(source, files, samples_per_shard))


def video_counts(out: Path, manifest: VideoManifest) -> dict:
    """Outcome counts of a partition: rows rejected / failed by reason / ok, clips ok / failed by reason."""
    out = Path(out)
    rejects = pq.read_table(video_file(out, manifest.name, "rejects"), columns=["reason"])["reason"].to_pylist()
    finished = clips_job(out).finished()
    rows, clips = Counter(), Counter()
    for shard_id in manifest.shard_ids:
        if f"{shard_id:05d}" not in finished:
            continue
        base = out / V.CLIPS_DIR / f"{shard_id:05d}"
        for counter, path in ((rows, f"{base}.rows.parquet"), (clips, f"{base}.parquet")):
            table = pq.read_table(path, columns=["status", "reason"])
            counter.update(r or V.SUCCESS for r in table["reason"].to_pylist())
    return {"rejected": dict(Counter(rejects)), "rows": dict(rows), "clips": dict(clips),
            "unfinished_shards": manifest.n_shards - sum(f"{s:05d}" in finished for s in manifest.shard_ids)}


def summary_line(manifest: VideoManifest, counts: dict) -> str:
    """One line: rows read, rejected, downloaded ok or failed (by reason), clips ok or failed (by reason)."""
    def split(counter: dict) -> tuple[int, int, str]:
        failed = {k: v for k, v in counter.items() if k != V.SUCCESS}
        detail = ", ".join(f"{k} {v}" for k, v in sorted(failed.items()))
        return counter.get(V.SUCCESS, 0), sum(failed.values()), f" ({detail})" if detail else ""

    rejected = ", ".join(f"{k} {v}" for k, v in sorted(counts["rejected"].items()))
    rows_ok, rows_failed, rows_detail = split(counts["rows"])
    clips_ok, clips_failed, clips_detail = split(counts["clips"])
    line = (f"video partition {manifest.name} ({manifest.source}): {manifest.input_rows} rows, "
            f"{manifest.rejected} rejected{f' ({rejected})' if rejected else ''}, {rows_ok} downloaded, "
            f"{rows_failed} failed{rows_detail}; {manifest.clips} clips: {clips_ok} ok, "
            f"{clips_failed} failed{clips_detail}")
    if counts["unfinished_shards"]:
        line += f"; {counts['unfinished_shards']} of {manifest.n_shards} shards not finished"
    return line


def ingest_video(source: str, files: list[Path], out: Path, *, partition: str | None = None,
                 config: VideoDownloadConfig | None = None,
                 samples_per_shard: int = DEFAULT_SAMPLES_PER_SHARD, wait: bool = False,
                 progress: bool = True) -> tuple[VideoManifest, dict]:
    """Prepare, download and cut one partition; rerunning resumes and never duplicates. Returns (manifest, counts)."""
    manifest = prepare_video(source, files, out, partition=partition, samples_per_shard=samples_per_shard,
                             wait=wait)
    download_video(out, manifest, config, wait=wait, progress=progress)
    return manifest, video_counts(out, manifest)
