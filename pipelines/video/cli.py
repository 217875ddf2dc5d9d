"""`tessera ingest --source webvid|panda70m`: the video track's own options and its ingest command."""

from __future__ import annotations

import argparse
import sys
import time

from pipelines.core.cli_options import add_renamed_option, refuse_image_only_flags
from pipelines.core.errors import TesseraUserError
from pipelines.ingest.download_options import add_download_options, default, fetch_config
from pipelines.video.fetch_settings import VIDEO_FETCH_TIMEOUT, VIDEO_MAX_BYTES


def add_ingest_options(p: argparse.ArgumentParser) -> None:
    """The download options (threads, guards) and the clip-cutting group."""
    add_download_options(p)
    video = p.add_argument_group(
        "video clips (--source webvid|panda70m; docs/video.md)",
        "Each video is fetched once and each clip [start, end) is decoded at --clip-fps, scaled so its short side "
        "is --video-size (aspect kept, even sides) and re-encoded as H.264 MP4 into "
        "OUT/clips/NNNNN.{tar,parquet,rows.parquet} (+ NNNNN_stats.json); rejected rows go to OUT/video/. "
        "Outcomes per row and per clip are in OUT/clips/*.parquet.",
    )
    video.add_argument("--max-video-bytes", type=int, default=VIDEO_MAX_BYTES,
                       help="largest video accepted, from Content-Length and while streaming (default 256 MiB)")
    add_renamed_option(video, "--clip-fps", "--fps", type=float, default=8.0,
                       help="frame rate the clips are cut at (default 8; was --fps)")
    video.add_argument("--video-size", type=int, default=256,
                       help="short side of the cut clips in px, aspect kept (default 256)")
    video.add_argument("--min-clip-seconds", type=float, default=0.5,
                       help="shorter clips fail as clip_too_short (default 0.5)")
    video.add_argument("--max-clip-seconds", type=float, default=60.0,
                       help="longer clips are cut to this length, recorded in their JSON (default 60)")


def ingest_cli(args: argparse.Namespace) -> int:
    """Prepare, download and cut, then one summary line (rows and clips by outcome)."""
    from pipelines.video.download import VideoDownloadConfig
    from pipelines.video.ingest import DEFAULT_SAMPLES_PER_SHARD, ingest_video, summary_line

    if args.max_video_bytes < 1:
        raise TesseraUserError(f"--max-video-bytes must be at least 1 (got {args.max_video_bytes})")
    if not 0 < args.clip_fps <= 120:
        raise TesseraUserError(f"--clip-fps: must be over 0 and at most 120 (got {args.clip_fps:g})")
    if args.min_clip_seconds > args.max_clip_seconds:
        raise TesseraUserError(f"--min-clip-seconds {args.min_clip_seconds:g} is over --max-clip-seconds "
                               f"{args.max_clip_seconds:g}")
    config = VideoDownloadConfig(
        fps=args.clip_fps, video_size=args.video_size, min_clip_seconds=args.min_clip_seconds,
        max_clip_seconds=args.max_clip_seconds, threads=default(args.threads, 4),
        fetch=fetch_config(args, timeout=VIDEO_FETCH_TIMEOUT, max_bytes=args.max_video_bytes),
    )
    manifest, counts = ingest_video(
        args.source, args.metadata, args.out, partition=args.partition, config=config,
        samples_per_shard=default(args.samples_per_shard, DEFAULT_SAMPLES_PER_SHARD), wait=args.wait,
        progress=not args.quiet,
    )
    print(summary_line(manifest, counts))
    return 0


def curate_cli(args: argparse.Namespace) -> int:
    """Video presets: measure every clip shard (resumable), select over the pool, print the outcomes."""
    from pipelines.video.curate import LEDGER
    from pipelines.video.presets import get_video_preset
    from pipelines.video.run import DEFAULT_CLIP_MODEL, curate_clips

    preset = get_video_preset(args.preset)
    refuse_image_only_flags(args, "video")
    if args.batch_size < 1:
        raise TesseraUserError("--batch-size must be at least 1")
    start = time.perf_counter()
    scored, summary = curate_clips(args.ingest_out, args.out, preset, args.clip_model or DEFAULT_CLIP_MODEL,
                                   min_clip_score=args.min_clip_score, batch_size=args.batch_size,
                                   precision=args.precision, log=lambda line: print(line, file=sys.stderr))
    seconds = time.perf_counter() - start
    print(f"curate ({preset.name}, CLIP {summary['model']}): {summary['clips']} clips from {len(scored)} shards -> "
          f"kept {summary['kept']}, dropped {summary['dropped']} in {seconds:.1f} s"
          + (" (nothing changed)" if summary.get("unchanged") else ""))
    if summary["unscored_shards"]:
        print(f"  left out (finished at ingest after scoring began): {', '.join(summary['unscored_shards'])}")
    for row in summary["by_outcome"]:
        label = row["outcome"] + (f" ({row['stage']}: {row['reason']})" if row["reason"] else "")
        print(f"    {label:<52}{row['n']:>8}")
    if summary["rows_rejected_before_download"]:
        print(f"  input rows rejected before download (no clips): {summary['rows_rejected_before_download']}")
    print(f"  -> {args.out}/{LEDGER}, curated/clips.parquet, summary.json")
    return 0
