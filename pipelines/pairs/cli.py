"""The pair track's commands: `tessera ingest --source laion|coyo|datacomp|capsfusion` and `tessera curate` with an
image-text preset."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipelines.core.cli_options import clip_model_id
from pipelines.core.errors import TesseraUserError


def ingest_cli(args: argparse.Namespace) -> int:
    """Prepare the partition, download its images, then print the end-of-ingest report (`--prepare-only`: the
    prepare summary, no download)."""
    from pipelines.ingest.download_options import image_ingest_options
    from pipelines.ingest.sequence import ingest, prepare_partition
    from pipelines.folders import print_ingest_report

    options = image_ingest_options(args)
    if args.prepare_only:  # stop before any download; the same command without the flag reuses this partition
        from pipelines.ingest.metadata_preparer import prepare_summary

        manifest = prepare_partition(args.source, args.metadata, args.out, partition=options["partition"],
                                     samples_per_shard=options["samples_per_shard"], wait=options["wait"])
        print(prepare_summary(args.out, manifest))
        return 0
    manifest = ingest(args.source, args.metadata, args.out, **options)
    print_ingest_report(args.out, manifest, brief=args.quiet)
    return 0


def curate_cli(args: argparse.Namespace) -> int:
    """Image-text presets: score every unscored shard, then select over the whole pool and print a summary."""
    from tqdm import tqdm

    from pipelines.core.shards import complete_shards
    from pipelines.curate.presets import build_stages, get_preset, keep_rate_band, parse_metadata_rule
    from pipelines.curate.scoring import ScoringOptions, score_shards
    from pipelines.curate.selection import check_rule_columns, run_selection
    from pipelines.curate.stats import keep_rate_warning

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
        "preset": preset.name, "model": clip_model_id(clip_model), "ingest_out": str(args.ingest_out.resolve()),
        "keep_rate_band": list(keep_rate_band(preset, args.top_fraction)), "stages": [type(s).__name__ for s in stages],
    })
    _print_summary(summary, len(done), n_shards, score_s, time.perf_counter() - start - score_s, args.out)
    warning = keep_rate_warning(summary)
    if warning:  # a nudge, not a failure: the exit status stays 0
        print(f"tessera: warning: {warning}", file=sys.stderr)
    return 0


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
