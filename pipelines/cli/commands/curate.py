"""`tessera curate INGEST_OUT --preset NAME --out OUT`: CLIP-score the shards, filter and dedup the pool, and
write curated/ (kept samples), dropped/ (one ledger row per dropped sample) and scores/."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipelines.curate.presets import build_stages, get_preset, keep_rate_band, parse_metadata_rule
from pipelines.curate.scoring import ScoringOptions, score_shards
from pipelines.curate.selection import check_rule_columns, run_selection
from pipelines.curate.stats import keep_rate_warning
from pipelines.core.errors import TesseraUserError
from pipelines.core.shards import complete_shards
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


def run_pairs(args: argparse.Namespace) -> int:
    """Image-text presets: score every unscored shard, then select over the whole pool and print a summary."""
    from tqdm import tqdm

    preset = get_preset(args.preset)
    if args.batch_size < 1 or args.num_actors < 1:
        raise TesseraUserError("--batch-size and --num-actors must be at least 1")
    if args.top_fraction is not None and not 0 < args.top_fraction <= 1:
        raise TesseraUserError("--top-fraction must be in (0, 1]")
    rules = tuple(parse_metadata_rule(t, "max") for t in args.max_meta)
    rules += tuple(parse_metadata_rule(t, "min") for t in args.min_meta)
    check_rule_columns(args.ingest_out, rules)
    stages = build_stages(preset, args.min_clip_score, args.top_fraction, args.near_dup_distance, rules)
    clip_model = args.clip_model or preset.reference_clip_model or "ViT-B-32:openai"
    opts = ScoringOptions(clip_model=clip_model, engine="ray" if args.engine == "ray" else "local",
                          batch_size=args.batch_size, num_actors=args.num_actors,
                          with_embeddings=args.embeddings, precision=args.precision)
    if args.engine == "spark":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    n_shards = len(complete_shards(args.ingest_out))
    start = time.perf_counter()
    with tqdm(total=n_shards, desc="clip scores", unit="shard", file=sys.stderr) as bar:
        def on_shard(stats: dict) -> None:
            bar.update(1)
            bar.set_postfix(img_s=stats["images_per_second"], errors=stats["score_errors"])

        done = score_shards(args.ingest_out, args.out, opts, on_shard)
        bar.update(n_shards - bar.n)
    score_s = time.perf_counter() - start
    summary = run_selection(args.ingest_out, args.out, stages, engine=args.engine, extra_summary={
        "preset": preset.name, "model": _model_id(clip_model), "ingest_out": str(args.ingest_out.resolve()),
        "keep_rate_band": list(keep_rate_band(preset, args.top_fraction)), "stages": [type(s).__name__ for s in stages],
    })
    _print_summary(summary, len(done), n_shards, score_s, time.perf_counter() - start - score_s, args.out)
    warning = keep_rate_warning(summary)
    if warning:  # a nudge, not a failure: the exit status stays 0
        print(f"tessera: warning: {warning}", file=sys.stderr)
    return 0


def _model_id(spec: str) -> str:
    from models.clip_registry import resolve

    return resolve(spec).model_id


def _print_summary(summary: dict, scored_now: int, n_shards: int, score_s: float, select_s: float,
                   out: Path) -> None:
    rate = summary["keep_rate"]
    print(f"curate: {summary['samples']} samples from {n_shards} shards ({scored_now} scored now in {score_s:.1f} s, "
          f"{n_shards - scored_now} already scored); selection ({summary['selection_engine']}) {select_s:.1f} s")
    print(f"  preset {summary['preset']}, CLIP model {summary['model']}")
    if summary["unscored_shards"]:  # only when a shard finished downloading after scoring started
        print(f"  left out (not scored yet): {', '.join(summary['unscored_shards'])}")
    print(f"  kept    {summary['kept']:>8}" + (f"  ({rate:.1%})" if rate is not None else ""))
    print(f"  dropped {summary['dropped']:>8}")
    for reason, n in summary["dropped_by_reason"].items():
        print(f"    {reason:<36}{n:>8}")
    print(f"  -> {out}/curated, {out}/dropped, {out}/scores")


def _refuse_image_only_flags(args: argparse.Namespace, kind: str) -> None:
    """Stop with one sentence when flags that only image-text presets use are given to `kind` presets."""
    unsupported = [flag for flag, value in (("--top-fraction", args.top_fraction),
                                            ("--near-dup-distance", args.near_dup_distance),
                                            ("--max-meta", args.max_meta), ("--min-meta", args.min_meta),
                                            ("--embeddings", args.embeddings)) if value]
    if args.engine != "local":
        unsupported.append(f"--engine {args.engine}")
    if unsupported:
        raise TesseraUserError(f"{', '.join(unsupported)} do(es) not apply to {kind} presets ({args.preset})")


def run_documents(args: argparse.Namespace) -> int:
    """Document presets: score images against their documents' texts, select, write document shards."""
    from pipelines.documents.run import curate_documents, default_clip_model, document_presets

    presets = document_presets(args.preset)
    _refuse_image_only_flags(args, "document")
    if args.batch_size < 1 or args.docs_per_shard < 1:
        raise TesseraUserError("--batch-size and --docs-per-shard must be at least 1")
    clip_model = args.clip_model or default_clip_model(presets)
    start = time.perf_counter()
    summary, shards = curate_documents(args.ingest_out, args.out, presets, clip_model,
                                       min_clip_score=args.min_clip_score, docs_per_shard=args.docs_per_shard,
                                       batch_size=args.batch_size, precision=args.precision,
                                       log=lambda line: print(line, file=sys.stderr))
    seconds = time.perf_counter() - start
    print(f"curate ({args.preset}, CLIP {_model_id(clip_model)}): {summary['documents']} documents -> kept "
          f"{summary['kept']} in {len(shards)} shards; {summary['images']} image occurrences -> kept "
          f"{summary['image_occurrences_kept']} ({summary['images_kept']} distinct) in {seconds:.1f} s")
    for title, rows in (("documents", summary["documents_by_outcome"]), ("images", summary["images_by_outcome"])):
        print(f"  {title}:")
        for row in rows:
            label = row["outcome"] + (f" ({row['reason']})" if row["reason"] else "")
            print(f"    {label:<44}{row['n']:>8}")
    print(f"  -> {args.out}/documents, doc_ledger.parquet, image_ledger.parquet, curated/ (tokenize --curated)")
    return 0


def run_video(args: argparse.Namespace) -> int:
    """Video presets: measure every clip shard (resumable), select over the pool, print the outcomes."""
    from pipelines.video.curate import LEDGER
    from pipelines.video.presets import get_video_preset
    from pipelines.video.run import DEFAULT_CLIP_MODEL, curate_clips

    preset = get_video_preset(args.preset)
    _refuse_image_only_flags(args, "video")
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
