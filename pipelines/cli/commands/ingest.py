"""`tessera ingest`: download a metadata partition into webdataset shards with a per-row outcome for every input row."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.core.errors import TesseraUserError
from pipelines.documents.ingest import ingest_documents
from pipelines.documents.sources import DOCUMENT_SOURCES
from pipelines.ingest.fetch import FetchConfig
from pipelines.ingest.image_downloader import DownloadConfig
from pipelines.ingest.sequence import ingest
from pipelines.ingest.sources import SOURCES
from pipelines.stats.report import print_ingest_report
from pipelines.video.sources import VIDEO_SOURCES

MIB = 1024 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="metadata -> webdataset shards + rejects ledger (image pairs, documents, video clips)",
        description=(
            "Read LAION / COYO / DataComp / CapsFusion-120M metadata parquet, reject rows with missing, invalid or "
            "duplicate URLs into OUT/rejects/, download the rest with img2dataset into OUT/shards/NNNNN.{tar,parquet} "
            "(+ NNNNN_stats.json) and write OUT/shards/sizes.json for open_clip (a copy in OUT/sizes.json). "
            "Rerunning the same command resumes: finished shards are skipped and no row is written twice. "
            "Ingesting more files into the same OUT adds a partition whose URLs already seen count as duplicates. "
            "Video sources (webvid, panda70m; docs/video.md) fetch each video once, cut its clips at the given "
            "timestamps, re-encode them at a fixed rate and size and write OUT/clips/NNNNN.{tar,parquet,rows.parquet}"
            " (+ NNNNN_stats.json), with rejected rows in OUT/video/. Document sources (mmc4, obelics; "
            "docs/documents.md) write canonical documents and their outcomes to OUT/documents/ and download each "
            "distinct image URL once into OUT/shards/."
        ),
    )
    p.add_argument("--source", required=True, choices=sorted(SOURCES) + list(DOCUMENT_SOURCES) + list(VIDEO_SOURCES),
                   help="metadata schema of the input files; mmc4 and obelics are interleaved documents "
                        "(docs/documents.md): their distinct image URLs are downloaded once, and every document and "
                        "image occurrence gets an outcome in OUT/documents/; webvid and panda70m are video-text "
                        "clips (every row and every clip gets an outcome)")
    p.add_argument("--metadata", required=True, nargs="+", type=Path, metavar="PATH",
                   help="metadata parquet file(s); for --source mmc4 MMC4's JSON lines (.jsonl, .jsonl.gz, .zip); for "
                        "webvid and panda70m the published CSV (.csv, .csv.gz) or parquet with the same columns")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--partition", help="partition name (default: derived from the file names)")
    p.add_argument("--image-size", type=int, default=512, help="target image side in px (default 512)")
    p.add_argument(
        "--resize-mode", default="keep_ratio",
        choices=["no", "border", "keep_ratio", "keep_ratio_largest", "center_crop"],
        help="img2dataset resize mode (default keep_ratio: short side = --image-size, aspect kept, as Emu3 needs; "
             "smaller originals are kept as they are unless --upscale)",
    )
    p.add_argument("--upscale", action="store_true",
                   help="also enlarge originals smaller than --image-size (default: store them at their own size)")
    p.add_argument("--encode-format", default="jpg", choices=["jpg", "png", "webp"])
    p.add_argument("--processes", type=int, default=2, help="download processes (default 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="download threads per process (default 32); for video, rows fetched and cut at once "
                        "(default 4)")
    guard = p.add_argument_group(
        "download guards and politeness (docs/download.md)",
        "Every refusal is recorded in the sidecar's error_message as '<reason>: <detail>' and counted by "
        "`tessera stats`. Private, loopback and link-local addresses are refused unless allowed.",
    )
    guard.add_argument(
        "--allow-private-network", action="store_true",
        help="fetch from loopback/private/link-local addresses too (a local test server, an intranet mirror); "
             "TESSERA_ALLOW_PRIVATE_NETWORK=1 does the same",
    )
    guard.add_argument("--timeout", type=float, default=None,
                       help="seconds for the whole fetch of one URL: connect, redirects, retries, body (default 10; "
                            "60 for video)")
    guard.add_argument("--retries", type=int, default=2,
                       help="retries on 429/503/connection resets, with backoff and Retry-After (default 2)")
    guard.add_argument("--max-image-bytes", type=int, default=32 * 1024 * 1024,
                       help="largest body accepted, from Content-Length and while streaming (default 32 MiB)")
    guard.add_argument("--max-image-pixels", type=int, default=89_478_485,
                       help="largest width*height accepted, read from the image header before decoding "
                            "(default 89478485, Pillow's limit); for video, the largest frame decoded")
    guard.add_argument("--per-host-connections", type=int, default=4,
                       help="open connections per host and download process (default 4)")
    guard.add_argument("--per-host-rate", type=float, default=8.0,
                       help="requests started per second per host and download process (default 8)")
    guard.add_argument("--ignore-robots", action="store_true", help="do not fetch or honour robots.txt (not advised)")
    p.add_argument("--samples-per-shard", type=int, default=None,
                   help="rows per shard (default 10000; for video 1000 rows, at most 10000)")
    video = p.add_argument_group(
        "video clips (--source webvid|panda70m; docs/video.md)",
        "Each clip [start, end) is decoded at --fps, scaled so its short side is --video-size (aspect kept, even "
        "sides) and re-encoded as H.264 MP4. Outcomes per row and per clip are in OUT/clips/*.parquet.",
    )
    video.add_argument("--max-video-bytes", type=int, default=256 * MIB,
                       help="largest video accepted, from Content-Length and while streaming (default 256 MiB)")
    video.add_argument("--fps", type=float, default=8.0, help="frame rate of the cut clips (default 8)")
    video.add_argument("--video-size", type=int, default=256,
                       help="short side of the cut clips in px, aspect kept (default 256)")
    video.add_argument("--min-clip-seconds", type=float, default=0.5,
                       help="shorter clips fail as clip_too_short (default 0.5)")
    video.add_argument("--max-clip-seconds", type=float, default=60.0,
                       help="longer clips are cut to this length, recorded in their JSON (default 60)")
    p.add_argument(
        "--distributor", default="multiprocessing", choices=["multiprocessing", "pyspark", "ray"],
        help="img2dataset distributor; pyspark/ray scale out to a cluster",
    )
    guard.add_argument("--no-opt-out", action="store_true",
                       help="ignore X-Robots-Tag noai/noindex headers (not advised)")
    p.add_argument("--quiet", action="store_true", help="print only the final one-line summary")
    p.add_argument(
        "--wait", action="store_true",
        help="if another run is writing the same partition, wait for it (default: stop with a message naming it)",
    )
    p.set_defaults(func=run)


def _fetch_config(args: argparse.Namespace, *, timeout: float, max_bytes: int) -> FetchConfig:
    return FetchConfig(
        allow_private_network=args.allow_private_network, timeout=timeout, retries=args.retries,
        max_image_bytes=max_bytes, max_image_pixels=args.max_image_pixels,
        per_host_connections=args.per_host_connections, per_host_rate=args.per_host_rate,
        respect_robots=not args.ignore_robots,
        **({"disallowed_header_directives": ()} if args.no_opt_out else {}),
    )


def _default(value, default):
    return default if value is None else value


def run(args: argparse.Namespace) -> int:
    if args.source in VIDEO_SOURCES:
        return run_video(args)
    fetch = _fetch_config(args, timeout=_default(args.timeout, 10.0), max_bytes=args.max_image_bytes)
    config = DownloadConfig(
        image_size=args.image_size, resize_mode=args.resize_mode, resize_only_if_bigger=not args.upscale,
        encode_format=args.encode_format,
        processes=args.processes, threads=_default(args.threads, 32), distributor=args.distributor, fetch=fetch,
    )
    options = dict(partition=args.partition, download=config,
                   samples_per_shard=_default(args.samples_per_shard, 10_000),
                   wait=args.wait, progress=not args.quiet)
    if args.source in DOCUMENT_SOURCES:
        documents, manifest, counts = ingest_documents(args.source, args.metadata, args.out, **options)
        print_ingest_report(args.out, manifest, brief=args.quiet)
        print_document_summary(documents, counts)
        return 0
    manifest = ingest(args.source, args.metadata, args.out, **options)
    print_ingest_report(args.out, manifest, brief=args.quiet)
    return 0


def run_video(args: argparse.Namespace) -> int:
    """The video branch: prepare, download and cut, then one summary line (rows and clips by outcome)."""
    from pipelines.video.download import VideoDownloadConfig
    from pipelines.video.ingest import DEFAULT_SAMPLES_PER_SHARD, ingest_video, summary_line

    if args.max_video_bytes < 1:
        raise TesseraUserError(f"--max-video-bytes must be at least 1 (got {args.max_video_bytes})")
    if args.min_clip_seconds > args.max_clip_seconds:
        raise TesseraUserError(f"--min-clip-seconds {args.min_clip_seconds:g} is over --max-clip-seconds "
                               f"{args.max_clip_seconds:g}")
    fetch = _fetch_config(args, timeout=_default(args.timeout, 60.0), max_bytes=args.max_video_bytes)
    config = VideoDownloadConfig(
        fps=args.fps, video_size=args.video_size, min_clip_seconds=args.min_clip_seconds,
        max_clip_seconds=args.max_clip_seconds, threads=_default(args.threads, 4), fetch=fetch,
    )
    manifest, counts = ingest_video(
        args.source, args.metadata, args.out, partition=args.partition, config=config,
        samples_per_shard=_default(args.samples_per_shard, DEFAULT_SAMPLES_PER_SHARD), wait=args.wait,
        progress=not args.quiet,
    )
    print(summary_line(manifest, counts))
    return 0


def print_document_summary(manifest, counts: dict) -> None:
    """One line for documents and one for image occurrences, each broken down by outcome."""
    def fmt(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items()))

    print(f"documents: {manifest.input_documents} read -> {fmt(counts['documents'])}")
    print(f"images in documents: {manifest.image_occurrences} ({manifest.distinct_urls} distinct URLs) -> "
          f"{fmt(counts['images'])}")
