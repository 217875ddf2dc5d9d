"""`tessera tokenize` (images -> Emu3 token shards) and `tessera tokenize-qa` (decode a sample back to a PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.emu3_preprocessing import MAX_AREA, MAX_ASPECT_RATIO, MIN_AREA, TARGET_AREA
from pipelines.core.errors import TesseraUserError


def _check_model(ref: str) -> None:
    if ref == "tiny" or Path(ref).is_dir():
        return
    if Path(ref).exists() or ref.count("/") != 1 or ref.startswith((".", "/")):
        raise TesseraUserError(f"--vq-model {ref!r} is neither `tiny`, a checkpoint folder, nor a hub id (owner/name)")


def add_preprocessing_options(p: argparse.ArgumentParser, target_help: str) -> None:
    """Emu3's preprocessing knobs (`--target-area`, `--min-area`, `--max-area`, `--max-aspect-ratio`), Emu3's defaults."""
    p.add_argument("--target-area", type=int, default=TARGET_AREA, help=target_help)
    p.add_argument("--min-area", type=int, default=MIN_AREA)
    p.add_argument("--max-area", type=int, default=MAX_AREA)
    p.add_argument("--max-aspect-ratio", type=float, default=MAX_ASPECT_RATIO)


def run_tokenize(args: argparse.Namespace) -> int:
    """Tokenize every finished shard of SRC."""
    from pipelines.tokenize.image_tokenizer import ImageTokenizerConfig
    from pipelines.core.runner import RunnerConfig
    from pipelines.tokenize.shards import tokenize_shards

    _check_model(args.vq_model)
    for opt, path in (("SRC", args.src), ("--captions", args.captions), ("--curated", args.curated)):
        if path is not None and not Path(path).is_dir():
            raise TesseraUserError(f"{opt} {path} is not a folder")
    stage_cfg = ImageTokenizerConfig(
        vq_model=args.vq_model, target_area=args.target_area, min_area=args.min_area, max_area=args.max_area,
        max_aspect_ratio=args.max_aspect_ratio, max_batch=args.max_batch, dtype=args.dtype,
    )
    runner_cfg = RunnerConfig(engine=args.engine, batch_size=args.batch_size, num_actors=args.num_actors)
    m = tokenize_shards(Path(args.src), Path(args.out), stage_cfg, runner_cfg, args.captions, args.curated)
    print(f"tokenized {m['tokenized']}/{m['samples']} samples in {len(m['shards'])} shards, "
          f"{m['total_tokens']} tokens; dropped {m['dropped'] or 'none'}; manifest: {Path(args.out) / 'manifest.json'}")
    return 0


def run_qa(args: argparse.Namespace) -> int:
    """Decode a sample of code grids next to their originals."""
    from pipelines.tokenize.qa import render_qa

    png = render_qa(Path(args.out), n=args.n, png=Path(args.png), seed=args.seed)
    print(f"wrote {png}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `tokenize` and `tokenize-qa`."""
    p = sub.add_parser("tokenize", help="encode downloaded images into Emu3 discrete token shards")
    p.add_argument("src", type=Path, help="ingest output folder (written by `tessera ingest`)")
    p.add_argument("--out", type=Path, required=True, help="output folder (emu3_tokens/, manifest.json); a rerun resumes it "
                   "with the same --vq-model/area/aspect/dtype settings only")
    p.add_argument("--vq-model", default="tiny", help="`tiny`, a local Emu3VQVAE folder, or a hub id")
    p.add_argument("--captions", type=Path, help="re-captioning output (parquet with key, final_caption); "
                   "samples whose caption it dropped are skipped as caption_dropped")
    p.add_argument("--curated", type=Path, help="curation output; only its curated/ keys are tokenized")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    add_preprocessing_options(p, "rescale area (512^2 pretrain, 720^2 SFT)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per stage call")
    p.add_argument("--max-batch", type=int, default=16, help="images per VQ forward pass")
    p.add_argument("--num-actors", type=int, default=1)
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    p.set_defaults(func=run_tokenize)

    q = sub.add_parser("tokenize-qa", help="decode a sample of Emu3 codes back to images, side by side (PNG)")
    q.add_argument("out", type=Path, help="a `tessera tokenize` output folder")
    q.add_argument("--n", type=int, default=8)
    q.add_argument("--png", default="qa.png")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=run_qa)
