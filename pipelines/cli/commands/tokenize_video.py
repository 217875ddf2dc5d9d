"""`tessera tokenize-video`: video ingest clips -> Emu3 video token shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.cli.commands.tokenize import add_preprocessing_options
from pipelines.core.cli_options import add_renamed_option
from pipelines.core.errors import TesseraUserError

DESCRIPTION = """\
Encode every successful clip of INGEST_OUT/clips/NNNNN.tar (written by `tessera ingest --source webvid|panda70m`)
into Emu3 discrete video tokens. Frames are sampled at --sample-fps, preprocessed as Emu3 does images (one size per
clip), cut into groups of 4 (the tokenizer's temporal factor; the last group repeats the last frame, counted in
padded_frames) and each group is encoded on its own, 4 frames -> one latent frame of (H/8)x(W/8) codes.

Writes OUT/video_tokens/NNNNN.parquet (key, caption, t, h, w, codes, fps, frames, padded_frames, tokenizer),
OUT/video_dropped/NNNNN.parquet (drop_reason: video_decode_error, too_few_frames, aspect_ratio_too_large,
image_too_small, missing_in_tar) and OUT/video_manifest.json. A rerun resumes and skips finished shards."""


def run_tokenize_video(args: argparse.Namespace) -> int:
    """Tokenize every finished clip shard of INGEST_OUT."""
    from pipelines.cli.commands.tokenize import _check_model
    from pipelines.video.tokenize import MANIFEST, VideoTokenizerConfig, tokenize_videos

    _check_model(args.vq_model)
    for opt, path in (("INGEST_OUT", args.src), ("--curated", args.curated)):
        if path is not None and not Path(path).is_dir():
            raise TesseraUserError(f"{opt} {path} is not a folder")
    if args.sample_fps <= 0:
        raise TesseraUserError(f"--sample-fps: must be over 0 (got {args.sample_fps:g})")
    cfg = VideoTokenizerConfig(
        vq_model=args.vq_model, fps=args.sample_fps, target_area=args.target_area, min_area=args.min_area,
        max_area=args.max_area, max_aspect_ratio=args.max_aspect_ratio, max_frames=args.max_frames,
        batch_size=args.batch_size, dtype=args.dtype,
    )
    m = tokenize_videos(args.src, args.out, cfg, args.curated)
    print(f"tokenized {m['tokenized']}/{m['clips']} clips in {len(m['shards'])} shards: {m['frames']} frames "
          f"(+{m['padded_frames']} padding) -> {m['latent_frames']} latent frames, {m['total_tokens']} tokens; "
          f"dropped {m['dropped'] or 'none'}; manifest: {Path(args.out) / MANIFEST}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `tokenize-video`."""
    p = sub.add_parser("tokenize-video", help="encode ingested video clips into Emu3 discrete video token shards",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, metavar="INGEST_OUT", help="video ingest output folder (holding clips/)")
    p.add_argument("--out", type=Path, required=True, help="output folder; a rerun resumes it with the same "
                   "--vq-model/sample-fps/area/aspect/max-frames/dtype settings only")
    p.add_argument("--curated", type=Path, metavar="CUR", help="curation output; only keys in CUR/curated/*.parquet "
                   "are tokenized")
    p.add_argument("--vq-model", default="tiny", help="`tiny`, a local Emu3VQVAE folder, or a hub id")
    add_renamed_option(p, "--sample-fps", "--fps", type=float, default=8.0,
                       help="frames sampled per second of clip (default 8; was --fps)")
    p.add_argument("--max-frames", type=int, default=None, help="keep at most the first N sampled frames per clip")
    add_preprocessing_options(p, "rescale area per frame (Emu3: about 512^2)")
    p.add_argument("--batch-size", type=int, default=8, help="4-frame groups per VQ forward pass")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    p.set_defaults(func=run_tokenize_video)
