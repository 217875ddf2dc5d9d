"""Dagster wiring for curation: `clip_scores` (per metadata partition, on the GPU pool) and `curated_selection`
(the whole pool: top-fraction thresholds and dedup need every shard), plus their checks."""

from typing import Optional

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
    asset_check,
)

from assets.metadata import section_metadata
from assets.partitions import metadata_files, partition_shard_ids
from assets.resources import TesseraResource
from pipelines.curate.presets import build_stages, get_preset, keep_rate_band
from pipelines.curate.scoring import ScoringOptions, score_shards, scored_model
from pipelines.curate.selection import SUMMARY_FILE, run_selection
from pipelines.curate.stats import invariant, keep_rate_in_band, keep_rate_warning, score_range
from pipelines.core.shard_io import read_json
from pipelines.stats.curate_figures import curate_section

CURATE_DIR = "curate"
INGEST_DIR = "ingest"


class ClipScoresConfig(Config):
    """Which CLIP model scores the shards (see models.clip_registry)."""

    clip_model: str = "tiny"
    with_embeddings: bool = False


class CuratedSelectionConfig(Config):
    """Preset and overrides for the pool-wide selection; `keep_rate_band` overrides the preset's band."""

    preset: str = "datacomp_basic"
    min_clip_score: Optional[float] = None
    top_fraction: Optional[float] = None
    near_dup_distance: Optional[int] = None
    keep_rate_band: Optional[list[float]] = None


@asset(partitions_def=metadata_files, deps=["image_shards"], pool="gpu", group_name="curation")
def clip_scores(context: AssetExecutionContext, config: ClipScoresConfig, tessera: TesseraResource):
    """CLIP image-text scores (and pHashes) for the shards this partition's ingest owns; scored shards are skipped."""
    engine = "ray" if tessera.engine == "ray" else "local"  # Spark only runs the metadata side
    opts = ScoringOptions(clip_model=config.clip_model, engine=engine, batch_size=tessera.batch_size,
                          num_actors=tessera.num_actors, with_embeddings=config.with_embeddings)
    own = partition_shard_ids(tessera.path(INGEST_DIR), context.partition_key)
    if not own:
        return MaterializeResult(metadata={"shards_scored": 0, "samples_scored": 0, "model": config.clip_model})
    done = score_shards(tessera.path(INGEST_DIR), tessera.path(CURATE_DIR), opts, shard_ids=own,
                        on_shard=lambda s: context.log.info(f"scored shard {s['shard']}: {s['samples']} samples"))
    return MaterializeResult(metadata={
        "shards_scored": len(done),
        "samples_scored": sum(s["samples"] for s in done),
        "model": scored_model(tessera.path(CURATE_DIR)) or config.clip_model,
    })


@asset(deps=[clip_scores], group_name="curation")
def curated_selection(context: AssetExecutionContext, config: CuratedSelectionConfig, tessera: TesseraResource):
    """Kept samples (curate/curated) and the drop ledger (curate/dropped) over the scored pool; finished shards
    whose clip_scores partition has not run yet are left out, logged and listed as `unscored_shards`. It runs shard
    by shard (pipelines/curate/shard_select.py: exact top-fraction threshold from the scored shards' histograms,
    bucketed dedups), so its memory is bounded by a shard or a bucket; it is still one unpartitioned asset that
    re-selects every scored shard after each clip_scores partition.

    Metadata: preset, CLIP model, keep rate against the preset's band, drops by stage and reason (table) and the CLIP
    score histogram with the preset's threshold (image)."""
    preset = get_preset(config.preset)
    stages = build_stages(preset, config.min_clip_score, config.top_fraction, config.near_dup_distance)
    out, ingest = tessera.path(CURATE_DIR), tessera.path(INGEST_DIR)
    band = list(config.keep_rate_band or keep_rate_band(preset, config.top_fraction))
    summary = run_selection(ingest, out, stages, engine="spark" if tessera.engine == "spark" else "local",
                            extra_summary={"preset": preset.name, "model": scored_model(out),
                                           "ingest_out": str(ingest.resolve()), "keep_rate_band": band})
    context.log.info(f"kept {summary['kept']} of {summary['samples']}; dropped by reason "
                     f"{summary['dropped_by_reason']}")
    unscored = summary["unscored_shards"]
    if unscored:
        context.log.warning(f"left out {len(unscored)} finished shard(s) not scored yet: {', '.join(unscored)}; "
                            "materialize their clip_scores partitions, then this asset again")
    warning = keep_rate_warning(summary)
    if warning:
        context.log.warning(warning)
    metadata = {k: summary[k] for k in ("samples", "kept", "dropped", "keep_rate")}
    return MaterializeResult(metadata={**metadata, **section_metadata(curate_section(out)),
                                       "shards": len(summary["shards"]), "unscored_shards": len(unscored)})


@asset_check(asset=clip_scores, blocking=True,
             description="CLIP scores lie in [-1, 1], none is NaN, one model produced them")
def check_clip_scores_range(tessera: TesseraResource) -> AssetCheckResult:
    """Fails on any NaN or out-of-range score, or on scores from several models."""
    r = score_range(tessera.path(CURATE_DIR))
    ok = r["nan_scores"] == 0 and r["out_of_range"] == 0 and r["models"] <= 1
    return AssetCheckResult(passed=bool(ok), metadata={k: v for k, v in r.items() if v is not None})


@asset_check(asset=curated_selection, blocking=True,
             description="every downloaded sample of the selected (scored) shards is in exactly one of curated/dropped")
def check_curated_selection_invariant(tessera: TesseraResource) -> AssetCheckResult:
    """Fails when a successful sample of a selected shard is missing, appears twice, or an unknown key appears;
    metadata says how many finished shards were left out unscored."""
    r = invariant(tessera.path(CURATE_DIR), tessera.path(INGEST_DIR))
    return AssetCheckResult(passed=r["missing"] == r["duplicated"] == r["unknown"] == 0, metadata=r)


@asset_check(asset=curated_selection,
             description="keep rate (kept / selected samples) inside the band expected of the preset (or configured)")
def check_curated_selection_keep_rate(tessera: TesseraResource) -> AssetCheckResult:
    """Warns when the share of kept samples falls outside the band recorded with the selection; a keep rate far
    from the preset's usual one means a CLIP model, threshold or input that does not match the preset."""
    summary = read_json(tessera.path(CURATE_DIR) / SUMMARY_FILE, default={})
    rate, (lo, hi) = summary.get("keep_rate"), summary.get("keep_rate_band") or (0.0, 1.0)
    return AssetCheckResult(
        passed=keep_rate_in_band(summary), severity=AssetCheckSeverity.WARN,
        description=keep_rate_warning(summary),
        metadata={"keep_rate": rate if rate is not None else -1.0, "band_low": lo, "band_high": hi,
                  "preset": summary.get("preset") or ""},
    )


ASSETS = [clip_scores, curated_selection]
CHECKS = [check_clip_scores_range, check_curated_selection_invariant, check_curated_selection_keep_rate]
