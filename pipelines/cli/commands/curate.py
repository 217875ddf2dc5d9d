"""`tessera curate INGEST_OUT --preset NAME --out OUT`: CLIP-score the shards, filter and dedup the pool, and
write curated/ (kept samples), dropped/ (one ledger row per dropped sample) and scores/."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.core.errors import TesseraUserError
from pipelines.core.track import Track
from pipelines.tracks import tracks


def register(subparsers) -> None:
    """Add the `curate` subcommand."""
    p = subparsers.add_parser("curate", help="score, filter and dedup downloaded shards into a curated selection",
                              description=__doc__)
    p.add_argument("ingest_out", type=Path, metavar="INGEST_OUT", help="a folder written by `tessera ingest`")
    p.add_argument("--preset", required=True, metavar="NAME",
                   help="filter chain to apply, which also picks the track: " + _presets_text() + "; document "
                        "presets may be joined by commas (each curates its own source, e.g. mmc4,obelics) into "
                        "documents/NNNNN.tar, doc_ledger.parquet and image_ledger.parquet (docs/documents.md); video "
                        "presets write clip_ledger.parquet and curated/clips.parquet (docs/video_curation.md)")
    p.add_argument("--out", required=True, type=Path, help="output folder (rerun the same command to resume)")
    p.add_argument("--clip-model", default=None,
                   help="tiny | open_clip NAME[:TAG|:random|:CKPT_FILE] | hf-hub:ORG/REPO | CHECKPOINT_DIR "
                        "(default: the preset's reference model, else ViT-B-32:openai)")
    p.add_argument("--engine", choices=("local", "ray", "spark"), default="local",
                   help="local loop; ray: scoring on Ray Data actors (RAY_ADDRESS to join a cluster); "
                        "spark: metadata-side selection on PySpark (SPARK_MASTER, default local[*])")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-actors", type=int, default=1, help="Ray actors for scoring (--engine ray)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--embeddings", action="store_true", help="also write fp16 image embeddings to embeddings/")
    p.add_argument("--min-clip-score", type=float, default=None,
                   help="override the preset's CLIP threshold (documents: an image's best-sentence similarity; "
                        "videos: the mean cosine of 3 frames with the caption, off by default)")
    p.add_argument("--docs-per-shard", type=int, default=1000, help="documents per output tar (document presets)")
    p.add_argument("--top-fraction", type=float, default=None, help="override the preset's pool fraction")
    p.add_argument("--near-dup-distance", type=int, default=None,
                   help="also drop near-duplicate images within this pHash Hamming distance")
    p.add_argument("--max-meta", action="append", default=[], metavar="COLUMN=VALUE",
                   help="drop rows whose metadata COLUMN exceeds VALUE (e.g. punsafe=0.5); repeatable")
    p.add_argument("--min-meta", action="append", default=[], metavar="COLUMN=VALUE",
                   help="drop rows whose metadata COLUMN is under VALUE (e.g. aesthetic_score_laion_v2=5.5)")
    p.set_defaults(func=run)


def _presets_text() -> str:
    """Every track's presets, for --help and the unknown-preset message."""
    return "; ".join(f"{', '.join(t.get('presets'))} ({t.title.lower()})" for t in tracks() if t.has("presets"))


def preset_track(preset: str) -> Track:
    """The track whose `presets` role holds every comma-separated name of `preset`; a user error lists them all."""
    names = preset.split(",")
    for t in tracks():
        if t.has("presets") and all(name in t.get("presets") for name in names):
            return t
    known = {name for t in tracks() if t.has("presets") for name in t.get("presets")}
    unknown = next((n for n in names if n not in known), None)
    raise TesseraUserError(f"unknown preset {unknown!r} (--preset): choose one of {_presets_text()}"
                           if unknown else f"--preset {preset!r} mixes the presets of different tracks")


def run(args: argparse.Namespace) -> int:
    """Curate with the track whose presets hold `--preset` (its `curate_cli` role)."""
    if not args.ingest_out.is_dir():
        raise TesseraUserError(f"INGEST_OUT {args.ingest_out} does not exist")
    return int(preset_track(args.preset).get("curate_cli")(args) or 0)
