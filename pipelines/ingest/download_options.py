"""The `tessera ingest` options of the download layer, shared by every track that fetches URLs (pairs and documents
download images with img2dataset, video fetches whole videos): download guards, politeness, threads, shard size.

Each track's `ingest_options` role calls `add_download_options`; it adds the options once however many tracks ask.
"""

from __future__ import annotations

import argparse

from pipelines.ingest.fetch import FetchConfig
from pipelines.ingest.image_downloader import DownloadConfig

_ADDED = "_tessera_download_options"


def add_download_options(p: argparse.ArgumentParser) -> None:
    """Image download, shard size and the guard group; a second call on the same parser adds nothing."""
    if getattr(p, _ADDED, False):
        return
    setattr(p, _ADDED, True)
    images = p.add_argument_group(
        "image download (pairs and documents)",
        "Images are downloaded with img2dataset into OUT/shards/NNNNN.{tar,parquet} (+ NNNNN_stats.json), with "
        "OUT/shards/sizes.json for open_clip (a copy in OUT/sizes.json).",
    )
    images.add_argument("--image-size", type=int, default=512, help="target image side in px (default 512)")
    images.add_argument(
        "--resize-mode", default="keep_ratio",
        choices=["no", "border", "keep_ratio", "keep_ratio_largest", "center_crop"],
        help="img2dataset resize mode (default keep_ratio: short side = --image-size, aspect kept, as Emu3 needs; "
             "smaller originals are kept as they are unless --upscale)",
    )
    images.add_argument("--upscale", action="store_true",
                        help="also enlarge originals smaller than --image-size (default: store them at their own size)")
    images.add_argument("--encode-format", default="jpg", choices=["jpg", "png", "webp"])
    images.add_argument("--processes", type=int, default=2, help="download processes (default 2)")
    images.add_argument("--threads", type=int, default=None,
                        help="download threads per process (default 32); for video, rows fetched and cut at once "
                             "(default 4)")
    images.add_argument("--samples-per-shard", type=int, default=None,
                        help="rows per shard (default 10000; for video 1000 rows, at most 10000)")
    images.add_argument(
        "--distributor", default="multiprocessing", choices=["multiprocessing", "pyspark", "ray"],
        help="img2dataset distributor; pyspark/ray scale out to a cluster",
    )
    _add_guards(p)


def _add_guards(p: argparse.ArgumentParser) -> None:
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
                       help="open connections per host, shared by every download process of this machine (of the "
                            "whole cluster under --distributor ray) (default 4)")
    guard.add_argument("--per-host-rate", type=float, default=8.0,
                       help="requests started per second per host, shared by every download process of this machine "
                            "(of the whole cluster under --distributor ray); a robots.txt Crawl-delay lowers it to "
                            "1/delay (default 8)")
    guard.add_argument("--ignore-robots", action="store_true", help="do not fetch or honour robots.txt (not advised)")
    guard.add_argument("--no-opt-out", action="store_true",
                       help="ignore X-Robots-Tag noai/noindex headers (not advised)")


def default(value, fallback):
    """`value`, or `fallback` where the option was left out (options whose default differs per track)."""
    return fallback if value is None else value


def fetch_config(args: argparse.Namespace, *, timeout: float, max_bytes: int) -> FetchConfig:
    """The fetch layer's settings from the guard options; `timeout` applies when --timeout was left out."""
    return FetchConfig(
        allow_private_network=args.allow_private_network, timeout=default(args.timeout, timeout),
        retries=args.retries, max_image_bytes=max_bytes, max_image_pixels=args.max_image_pixels,
        per_host_connections=args.per_host_connections, per_host_rate=args.per_host_rate,
        respect_robots=not args.ignore_robots,
        **({"disallowed_header_directives": ()} if args.no_opt_out else {}),
    )


def image_download_config(args: argparse.Namespace) -> DownloadConfig:
    """img2dataset settings (pairs and documents) from the options."""
    fetch = fetch_config(args, timeout=10.0, max_bytes=args.max_image_bytes)
    return DownloadConfig(
        image_size=args.image_size, resize_mode=args.resize_mode, resize_only_if_bigger=not args.upscale,
        encode_format=args.encode_format, processes=args.processes, threads=default(args.threads, 32),
        distributor=args.distributor, fetch=fetch,
    )


def image_ingest_options(args: argparse.Namespace) -> dict:
    """The keyword arguments pairs and documents pass to their ingest: partition, download, shard size, wait."""
    return dict(partition=args.partition, download=image_download_config(args),
                samples_per_shard=default(args.samples_per_shard, 10_000), wait=args.wait, progress=not args.quiet)
