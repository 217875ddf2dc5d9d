"""`tessera export-video-frames`: clips as Emu-style documents of sampled frames and captions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.core.errors import TesseraUserError

DESCRIPTION = """\
Write every clip of a video ingest folder (only the kept ones with --curated) as an interleaved document in
OUT/documents/NNNNN.tar, the format of curated document shards: <doc_id>.json with items = the caption, then
--frames frames sampled as Emu1's process_video does (8 segment centres by default), each its own image
<doc_id>.<i>.jpg with key <clipkey>-f<i>. With --group video, one document per source video holds its clips in time
order, each caption before its clip's frames (Panda-70M's timestamped captions, laid out the way YT-Storyboard-1B
interleaves subtitles and frames). Lay the result out with `tessera doc-sequences OUT --layout emu2 --n-query 32`.
OUT/frame_export/NNNNN.parquet records every clip's outcome; a rerun resumes and skips finished shards."""


def run(args: argparse.Namespace) -> int:
    """Export the frames and print the totals."""
    from pipelines.core.shard_reader import load_curated_keys
    from pipelines.video.export import MANIFEST, export_video_frames

    if not args.ingest_out.is_dir():
        raise TesseraUserError(f"INGEST_OUT {args.ingest_out} is not a folder")
    curated = load_curated_keys(args.curated) if args.curated is not None else None
    m = export_video_frames(args.ingest_out, args.out, curated, frames=args.frames, captions_from=args.captions_from,
                            group=args.group, log=lambda line: print(line, file=sys.stderr))
    print(f"export-video-frames: {m['exported']}/{m['clips']} clips -> {m['documents']} documents, {m['images']} "
          f"frames in {len(m['units'])} shards; skipped {m['skipped'] or 'none'}; manifest: "
          f"{Path(args.out) / MANIFEST}")
    print(f"lay out with: tessera doc-sequences {args.out} --layout emu2 --n-query 32 --out SEQ")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `export-video-frames`."""
    p = sub.add_parser("export-video-frames", help="write clips as Emu-style interleaved frame-and-text documents",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ingest_out", type=Path, metavar="INGEST_OUT",
                   help="a folder written by `tessera ingest --source webvid|panda70m`")
    p.add_argument("--out", type=Path, required=True, help="output folder (rerun the same command to resume)")
    p.add_argument("--curated", type=Path, metavar="CUR",
                   help="a `tessera curate --preset webvid|panda70m` output: only its curated/ clips are exported")
    p.add_argument("--frames", type=int, default=8, help="frames per clip (Emu1: 8)")
    p.add_argument("--captions-from", choices=("json", "txt"), default="json",
                   help="the caption field of <key>.json, or the <key>.txt member")
    p.add_argument("--group", choices=("clip", "video"), default="clip",
                   help="one document per clip, or per source video with its clips' captions interleaved in time")
    p.set_defaults(func=run)
