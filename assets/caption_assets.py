"""Dagster wiring for re-captioning: `synthetic_captions` and `fused_captions` after `curated_selection`.

Both are partitioned like the ingest (a `metadata_files` partition captions the shards that file's ingest owns),
run on the `gpu` pool, and are incremental: shards finished by an earlier run are skipped. Outputs live under
`tessera.path("captions")`: `synthetic/<shard>.parquet` and `captions/<shard>.parquet` (the caption ledger).
No `from __future__ import annotations` here: Dagster resolves the Config annotations when decorating.
"""

import json

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Config,
    Field,
    MaterializeResult,
    asset,
    asset_check,
)

from assets.metadata import markdown_metadata
from assets.partitions import metadata_files, partition_shard_ids
from assets.resources import TesseraResource
from pipelines.caption import jobs
from pipelines.caption.parts import CAPTIONS_DIR, SYNTHETIC_DIR, image_shard_parts, part_job, synthetic_parts
from pipelines.core.runner import StageRunner
from pipelines.stats.caption_figures import fused_section, synthetic_section

CAPTIONS_ROOT = "captions"
DEFAULT_MAX_DEGENERATE_RATE = 0.2


class SyntheticCaptionsConfig(Config):
    """The image-to-text model and its generation settings."""

    captioner: str = "tiny"  # `tiny`, a local folder, or a hub id
    backend: str = "auto"  # auto: vLLM when usable and `prompt` is set, else transformers
    num_beams: int = 3
    max_new_tokens: int = 30
    prompt: str | None = None


class FusedCaptionsConfig(Config):
    """The CapsFusion LLM, its generation settings (reference defaults) and the hygiene fallback."""

    llm: str = "tiny"  # `tiny`, a local folder, or a hub id such as BAAI/CapsFus-LLaMA
    backend: str = "auto"  # auto: vLLM when it imports and CUDA is present, else transformers
    num_beams: int = 3
    max_new_tokens: int = 80
    max_prompt_tokens: int = 256
    fallback: str = "raw"  # raw | synthetic | drop


def caption_runner(tessera: TesseraResource) -> StageRunner:
    """The stage runner for the caption assets: Ray when the resource says so, else local (Spark has no GPU path)."""
    engine = "ray" if tessera.engine == "ray" else "local"
    return StageRunner(engine=engine, batch_size=tessera.batch_size, num_actors=tessera.num_actors)


def _partition_metadata(section) -> dict:
    """The whole partition's counts (parts finished by earlier runs too), next to this run's summary."""
    return {"partition_parts": section.facts["parts"], "partition_rows": section.facts["rows"],
            **markdown_metadata(section)}


def _summary_metadata(summary: jobs.RunSummary) -> dict:
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    return {
        "rows": summary.rows,
        "parts_done": summary.parts_done,
        "parts_skipped": summary.parts_skipped,
        "rows_per_s": round(rate, 3),
        "generated_tokens_per_s": round(summary.tokens / summary.seconds, 1) if summary.seconds else 0.0,
        "statuses": dict(summary.statuses),
        "caption_sources": dict(summary.sources),
    }


@asset(deps=[AssetKey("curated_selection")], partitions_def=metadata_files, pool="gpu", group_name="captions")
def synthetic_captions(context: AssetExecutionContext, config: SyntheticCaptionsConfig, tessera: TesseraResource):
    """A synthetic caption for every curated image (every image when no curated selection exists yet).

    Metadata: this run's counts, and the partition's caption statuses (`caption_status` table)."""
    from models.tiny_text import resolve_model
    from pipelines.caption.synthetic_captioner import SyntheticCaptioner

    curate = tessera.path("curate")
    path, name = resolve_model(config.captioner, "captioner")
    stage = SyntheticCaptioner(model=path, backend=config.backend, num_beams=config.num_beams,
                               max_new_tokens=config.max_new_tokens, prompt=config.prompt)
    own = partition_shard_ids(tessera.path("ingest"), context.partition_key)
    # Each shard's unit reads its own curated/<shard>.parquet: no pool-wide key set, whatever the selection's layout.
    parts = image_shard_parts(tessera.path("ingest"), curate if (curate / "curated").is_dir() else None, own)
    summary = jobs.synthesize(parts, tessera.path(CAPTIONS_ROOT, SYNTHETIC_DIR), stage, caption_runner(tessera),
                              jobs.models_json(captioner=name), progress=False)
    context.log.info(summary.text())
    section = synthetic_section(tessera.path(CAPTIONS_ROOT), own)
    return MaterializeResult(metadata={**_summary_metadata(summary), "captioner": name,
                                       **_partition_metadata(section)})


@asset(deps=[synthetic_captions], partitions_def=metadata_files, pool="gpu", group_name="captions")
def fused_captions(context: AssetExecutionContext, config: FusedCaptionsConfig, tessera: TesseraResource):
    """CapsFusion of alt-text and synthetic caption, hygiene-checked, with the final caption and its source.

    Metadata: this run's counts; the partition's caption statuses and sources (tables), caption lengths before and
    after fusion (table and `caption_length_plot` image)."""
    from models.tiny_text import resolve_model
    from pipelines.caption.caption_fuser import CaptionFuser
    from pipelines.caption.hygiene import HygieneConfig

    path, name = resolve_model(config.llm, "llm")
    stage = CaptionFuser(model=path, backend=config.backend, num_beams=config.num_beams,
                         max_new_tokens=config.max_new_tokens, max_prompt_tokens=config.max_prompt_tokens)
    synthetic_dir = tessera.path(CAPTIONS_ROOT, SYNTHETIC_DIR)
    own = partition_shard_ids(tessera.path("ingest"), context.partition_key)
    parts = [p for p in synthetic_parts(synthetic_dir) if p.part_id in own]
    # The ledger names the captioner that actually wrote the synthetic captions.
    written_by = next((m.get("models") for m in part_job(synthetic_dir).finished().values()), None)
    cap_name = json.loads(written_by).get("captioner") if written_by else None
    summary = jobs.fuse(parts, tessera.path(CAPTIONS_ROOT, CAPTIONS_DIR), stage, caption_runner(tessera),
                        HygieneConfig(fallback=config.fallback), jobs.models_json(captioner=cap_name, llm=name),
                        progress=False)
    context.log.info(summary.text())
    section = fused_section(tessera.path(CAPTIONS_ROOT), own)
    return MaterializeResult(metadata={**_summary_metadata(summary), "llm": name, "fallback": config.fallback,
                                       **_partition_metadata(section)})


def _partition_scope(context, tessera: TesseraResource) -> tuple[set[str], dict]:
    """The checked partition's shard ids, and metadata saying which partition the numbers describe."""
    own = partition_shard_ids(tessera.path("ingest"), context.partition_key)
    return own, {"partition": context.partition_key, "shards": len(own)}


# Partitioned like the asset (a preview feature in Dagster 1.13): each evaluation is recorded against the partition
# it checked, and its counts cover that partition's shards only.
@asset_check(asset=fused_captions, partitions_def=metadata_files, blocking=True,
             description="In the checked partition's shards, every row that was not dropped has a non-empty final "
                         "caption")
def check_fused_captions_no_empty_final(context, tessera: TesseraResource) -> AssetCheckResult:
    """Fails when a kept row of the partition has a missing or blank final caption
    (sql/check_fused_captions_empty_final.sql)."""
    own, scope = _partition_scope(context, tessera)
    r = jobs.query_captions(tessera.path(CAPTIONS_ROOT, CAPTIONS_DIR), "check_fused_captions_empty_final", own)
    return AssetCheckResult(passed=r["empty_final"] == 0, metadata={**r, **scope})


@asset_check(
    asset=fused_captions, partitions_def=metadata_files,
    description="In the checked partition's shards, the share of degenerate fused captions stays under a ceiling "
                "(config: max_degenerate_rate)",
    config_schema={"max_degenerate_rate": Field(float, default_value=DEFAULT_MAX_DEGENERATE_RATE)},
)
def check_fused_captions_degenerate_rate(context, tessera: TesseraResource) -> AssetCheckResult:
    """Warns when hygiene flagged more of the partition's fused captions than the ceiling
    (sql/check_fused_captions_degenerate_rate.sql)."""
    ceiling = float(context.op_execution_context.op_config["max_degenerate_rate"])
    own, scope = _partition_scope(context, tessera)
    r = jobs.query_captions(tessera.path(CAPTIONS_ROOT, CAPTIONS_DIR), "check_fused_captions_degenerate_rate", own)
    return AssetCheckResult(passed=float(r["degenerate_rate"]) <= ceiling, severity=AssetCheckSeverity.WARN,
                            metadata={**r, **scope, "max_degenerate_rate": ceiling})


ASSETS = [synthetic_captions, fused_captions]
CHECKS = [check_fused_captions_no_empty_final, check_fused_captions_degenerate_rate]
