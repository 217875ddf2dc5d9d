"""`tessera caption` (images -> synthetic captions -> fused captions) and `tessera fuse` (CapsFusion metadata)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipelines.core.errors import TesseraUserError


def _resolve(ref: str, kind: str, option: str) -> tuple[str, str]:
    """Model path for from_pretrained and its ledger name; fails early, in one line, when it cannot be loaded."""
    from transformers import AutoConfig

    from models.tiny_text import resolve_model

    path, name = resolve_model(ref, kind)
    try:
        AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise TesseraUserError(f"{option} {ref!r} is neither `tiny`, a model folder, nor a reachable hub id ({err})")
    return path, name


def _backend(args) -> None:
    """Argument-time checks of an explicit `--backend vllm`; `auto` falls back to transformers by itself."""
    from models.generation import vllm_installed

    if args.backend != "vllm":
        return
    if hasattr(args, "caption_prompt") and not args.caption_prompt:  # `tessera caption` only
        raise TesseraUserError("--backend vllm needs --caption-prompt: the captioner's own prompt template with its "
                               "image placeholder (or use --backend transformers / auto)")
    if not vllm_installed():
        raise TesseraUserError("--backend vllm needs vLLM: pip install 'tessera[vllm]' (CUDA machines only)")


def _fuser_and_runner(args, llm_path: str):
    from pipelines.caption.caption_fuser import CaptionFuser
    from pipelines.caption.hygiene import HygieneConfig
    from pipelines.core.runner import StageRunner

    fuser = CaptionFuser(
        model=llm_path, backend=args.backend, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens,
        max_prompt_tokens=args.max_prompt_tokens,
    )
    runner = StageRunner(engine=args.engine, batch_size=args.batch_size, num_actors=args.num_actors)
    return fuser, runner, HygieneConfig(fallback=args.fallback)


def run_fuse(args: argparse.Namespace) -> int:
    """Fuse CapsFusion-style metadata (raw + synthetic caption columns, no images)."""
    from models.generation import load_tokenizer
    from pipelines.caption import jobs
    from pipelines.caption.caption_fuser import fusion_prompts
    from pipelines.caption.parts import CAPTIONS_DIR, RAW_CAPTION, SYNTHETIC_CAPTION, claim_metadata_inputs
    from pipelines.caption.parts import metadata_parts

    if args.rows_per_part < 1:
        raise TesseraUserError("--rows-per-part must be at least 1")
    parts = metadata_parts(args.input, args.rows_per_part, args.raw_column, args.synthetic_column)
    llm_path, llm_name = _resolve(args.llm, "llm", "--llm")
    if args.dry_run:
        tokenizer = load_tokenizer(llm_path)
        try:  # the stage's own prompt path: the same prompts, for the same rows, as a real run sends
            for part in parts:
                table, _ = part.load()
                keys = table.column("key").to_pylist()
                raws, syns = (table.column(c).to_pylist() for c in (RAW_CAPTION, SYNTHETIC_CAPTION))
                for i, fitted in fusion_prompts(tokenizer, raws, syns, args.max_prompt_tokens):
                    line = json.dumps({"key": keys[i], "prompt": fitted.prompt}, ensure_ascii=False)
                    sys.stdout.write(line + "\n")
        except BrokenPipeError:  # `| head`: the reader has seen enough
            sys.stderr.close()
        return 0
    if args.out is None:
        raise TesseraUserError("--out is required (except with --dry-run)")
    _backend(args)
    out = Path(args.out) / CAPTIONS_DIR
    claim_metadata_inputs(out, args.rows_per_part, args.input)
    fuser, runner, hygiene = _fuser_and_runner(args, llm_path)
    models = jobs.models_json(captioner=f"input:{args.synthetic_column}", llm=llm_name)
    summary = jobs.fuse(parts, out, fuser, runner, hygiene, models, progress=not args.quiet)
    print(summary.text(), file=sys.stderr)
    print(f"fused captions: {out}")
    return 0


def run_caption(args: argparse.Namespace) -> int:
    """Caption the images of an ingest folder, then fuse each caption with its alt-text, shard by shard."""
    from pipelines.caption import jobs
    from pipelines.caption.parts import CAPTIONS_DIR, SYNTHETIC_DIR, image_shard_parts, synthetic_parts
    from pipelines.caption.synthetic_captioner import SyntheticCaptioner

    if not Path(args.src).is_dir():
        raise TesseraUserError(f"SRC {args.src} is not a folder")
    _backend(args)
    cap_path, cap_name = _resolve(args.captioner, "captioner", "--captioner")
    llm_path, llm_name = _resolve(args.llm, "llm", "--llm")
    captioner = SyntheticCaptioner(
        model=cap_path, backend=args.backend, num_beams=args.caption_num_beams,
        max_new_tokens=args.caption_max_new_tokens, prompt=args.caption_prompt,
    )
    fuser, runner, hygiene = _fuser_and_runner(args, llm_path)
    out = Path(args.out)
    s1 = jobs.synthesize(image_shard_parts(args.src, args.curated), out / SYNTHETIC_DIR, captioner, runner,
                         jobs.models_json(captioner=cap_name), progress=not args.quiet)
    print(s1.text(), file=sys.stderr)
    models = jobs.models_json(captioner=cap_name, llm=llm_name)
    s2 = jobs.fuse(synthetic_parts(out / SYNTHETIC_DIR), out / CAPTIONS_DIR, fuser, runner, hygiene, models,
                   progress=not args.quiet)
    print(s2.text(), file=sys.stderr)
    print(f"fused captions: {out / CAPTIONS_DIR}")
    return 0


def _common(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    p.add_argument("--out", type=Path, required=out_required, help="output folder (captions/<part>.parquet + _stats.json)")
    p.add_argument("--llm", default="tiny", help="fusion LLM: `tiny`, a local folder, or a hub id (BAAI/CapsFus-LLaMA)")
    p.add_argument("--backend", choices=("auto", "transformers", "vllm"), default="auto",
                   help="auto: vLLM when it imports and CUDA is present, else transformers")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--fallback", choices=("raw", "synthetic", "drop"), default="raw",
                   help="final caption when the fused one is degenerate")
    p.add_argument("--num-beams", type=int, default=3, help="fusion beams (CapsFusion: 3)")
    p.add_argument("--max-new-tokens", type=int, default=80, help="fusion new-token limit (CapsFusion: 80)")
    p.add_argument("--max-prompt-tokens", type=int, default=256, help="prompt limit; the raw caption is cut to fit")
    p.add_argument("--batch-size", type=int, default=16, help="rows per model call")
    p.add_argument("--num-actors", type=int, default=1, help="Ray actors per stage (--engine ray)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `caption` and `fuse`."""
    c = sub.add_parser("caption", help="synthetic captions for downloaded images, fused with their alt-text")
    c.add_argument("src", type=Path, help="ingest output folder (written by `tessera ingest`)")
    c.add_argument("--curated", type=Path, help="curation output; only keys in its curated/*.parquet are captioned")
    c.add_argument("--captioner", default="tiny", help="image-to-text model: `tiny`, a local folder, or a hub id")
    c.add_argument("--caption-num-beams", type=int, default=3)
    c.add_argument("--caption-max-new-tokens", type=int, default=30)
    c.add_argument("--caption-prompt", default=None, help="text prefix / prompt template for the captioner")
    _common(c)
    c.set_defaults(func=run_caption)

    f = sub.add_parser("fuse", help="CapsFusion over metadata with raw and synthetic caption columns (no images)")
    f.add_argument("--input", type=Path, nargs="+", required=True, help="parquet files (CapsFusion-120M style)")
    f.add_argument("--raw-column", default="laion_2b", help="raw alt-text column")
    f.add_argument("--synthetic-column", default="laion_coco", help="synthetic caption column")
    f.add_argument("--rows-per-part", type=int, default=10_000, help="rows per output part (keep it to resume)")
    f.add_argument("--dry-run", action="store_true", help="print {key, prompt} JSON lines; generate nothing")
    _common(f, out_required=False)
    f.set_defaults(func=run_fuse)
