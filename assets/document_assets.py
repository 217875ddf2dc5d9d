"""Dagster wiring for interleaved documents (MMC4, OBELICS), beside the pair assets and in their own folders.

Files under `INPUT/mmc4/` (`*.jsonl`, `*.jsonl.gz`, `*.zip`) and `INPUT/obelics/` (`*.parquet`) become
`document_files` partitions (the sensor adds them and runs `document_ingest_job`): `raw_documents` parses them,
`document_images` downloads their distinct image URLs and links documents to sample keys. Pool-wide assets follow
through automation: `document_stats`, `curated_documents`, `document_sequences` (Emu3 tokens of the kept images,
then one training sequence per document). Folders: `docs_ingest`, `docs_curate`, `docs_tokens`, `docs_sequences`.
No `from __future__ import annotations`: Dagster resolves Config annotations.
"""

import json
from typing import Optional

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetSelection,
    Config,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    define_asset_job,
)

from assets.automation import automated
from assets.metadata import markdown_metadata
from assets.resources import TesseraResource
from models.emu3_preprocessing import MAX_AREA, MIN_AREA, TARGET_AREA
from assets.source_files import source_file, source_files_sensor
from pipelines.stats.section import Table, md_table

document_files = DynamicPartitionsDefinition(name="document_files")
INGEST, CURATE, TOKENS, SEQUENCES = "docs_ingest", "docs_curate", "docs_tokens", "docs_sequences"
PATTERNS = {"mmc4": ("*.jsonl", "*.jsonl.gz", "*.zip"), "obelics": ("*.parquet",)}


class CuratedDocumentsConfig(Config):
    """Presets (mmc4 or mmc4_core for MMC4, obelics for OBELICS; comma-separated), CLIP model, threshold override."""

    preset: str = "mmc4,obelics"
    clip_model: str = "tiny"
    min_clip_score: Optional[float] = None
    docs_per_shard: int = 1000


class DocumentSequencesConfig(Config):
    """VQ model and area for the images, the text tokenizer and the sequence layout."""

    vq_model: str = "tiny"
    target_area: int = TARGET_AREA
    min_area: int = MIN_AREA
    max_area: int = MAX_AREA
    tokenizer: str = "tiny"
    layout: str = "emu3"  # or "emu2": [IMG] + n_query <image> + [/IMG] placeholders
    n_query: int = 64
    max_length: Optional[int] = None


@asset(partitions_def=document_files, group_name="documents", kinds={"duckdb", "parquet"})
def raw_documents(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """One document file in the canonical document schema; malformed documents are rejected with a reason."""
    from pipelines.documents.ingest import prepare_documents

    source, path = source_file(tessera.input_dir, context.partition_key, PATTERNS)
    manifest, images = prepare_documents(source, [path], tessera.path(INGEST), partition=context.partition_key,
                                         samples_per_shard=tessera.samples_per_shard, wait=True)
    return MaterializeResult(metadata={
        "source": source, "documents": manifest.input_documents, "accepted": manifest.accepted,
        "rejected": manifest.rejected, "image_occurrences": manifest.image_occurrences,
        "distinct_urls": manifest.distinct_urls, "urls_to_download": images.accepted,
    })


@asset(partitions_def=document_files, deps=[raw_documents], group_name="documents",
       kinds={"img2dataset", "webdataset"})
def document_images(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """The partition's distinct image URLs downloaded once (same fetch layer and shards as pairs); every image
    occurrence linked to its sample key or its failure reason."""
    from pipelines.documents.ingest import link_documents
    from pipelines.core.locks import partition_lock
    from pipelines.ingest.sequence import download_partition, partition_manifest

    out, key = tessera.path(INGEST), context.partition_key
    download_partition(out, partition_manifest(out, key), tessera.download_config(), wait=True, progress=False,
                       warn=context.log.warning)
    with partition_lock(out, key, wait=True):
        counts = link_documents(out, key)
    return MaterializeResult(metadata={"documents": json.dumps(counts["documents"]),
                                       "images": json.dumps(counts["images"])})


@asset(deps=[document_images], group_name="documents", kinds={"duckdb"})
def document_stats(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """Documents and image occurrences per outcome over every ingested document partition (sql/documents_*.sql)."""
    from pipelines.documents.figures import documents_section
    from pipelines.documents.stats import document_stats as compute

    stats = compute(tessera.path(INGEST))
    section = documents_section(tessera.path(INGEST))
    return MaterializeResult(metadata={
        **{k: int(v) for k, v in stats["document_accounting"].items()},
        "outcomes": MetadataValue.md(md_table(Table("outcomes", stats["document_outcomes"]))),
        **{k: v for k, v in markdown_metadata(section).items() if k != "document_outcomes"},
    })


@asset(deps=[document_stats], pool="gpu", group_name="documents")
def curated_documents(context: AssetExecutionContext, config: CuratedDocumentsConfig, tessera: TesseraResource):
    """CLIP similarity of every image to its document's sentences, the preset's rules, MMC4 assignment, dedup, and
    document shards (`docs_curate/documents/*.tar`) with a ledger row for every document and image occurrence."""
    from pipelines.documents.figures import documents_section
    from pipelines.documents.run import curate_documents, document_presets

    out = tessera.path(CURATE)
    summary, shards = curate_documents(tessera.path(INGEST), out, document_presets(config.preset), config.clip_model,
                                       min_clip_score=config.min_clip_score, docs_per_shard=config.docs_per_shard,
                                       batch_size=tessera.batch_size, log=context.log.info)

    figures = {k: v for k, v in markdown_metadata(documents_section(out)).items() if k.endswith("_outcomes")
               and k != "document_outcomes"}
    return MaterializeResult(metadata={**figures,
        "preset": summary["preset"], "documents": summary["documents"], "kept": summary["kept"],
        "image_occurrences_kept": summary["image_occurrences_kept"], "shards": len(shards),
        "documents_by_outcome": MetadataValue.md(md_table(Table("documents", summary["documents_by_outcome"]))),
        "images_by_outcome": MetadataValue.md(md_table(Table("images", summary["images_by_outcome"]))),
    })


@asset(deps=[curated_documents], pool="gpu", group_name="documents")
def document_sequences(context: AssetExecutionContext, config: DocumentSequencesConfig, tessera: TesseraResource):
    """Emu3 tokens of the kept document images, then one training sequence per kept document."""
    from pipelines.core.runner import RunnerConfig
    from pipelines.documents.sequences import build_sequences
    from pipelines.tokenize.image_tokenizer import ImageTokenizerConfig
    from pipelines.tokenize.shards import tokenize_shards

    from pipelines.core.shard_io import read_json

    kept = sum((read_json(tessera.path(CURATE) / "documents" / "sizes.json", default={}) or {}).values())
    if not kept:  # nothing survived curation (yet): an empty result, not a failure
        context.log.warning("curated_documents kept no document: no sequences to build")
        return MaterializeResult(metadata={"documents": 0, "kept": 0})
    stage = ImageTokenizerConfig(vq_model=config.vq_model, target_area=config.target_area, min_area=config.min_area,
                                 max_area=config.max_area)
    runner = RunnerConfig(engine="ray" if tessera.engine == "ray" else "local", batch_size=tessera.batch_size,
                          num_actors=tessera.num_actors)
    tokens = tokenize_shards(tessera.path(INGEST), tessera.path(TOKENS), stage, runner, None, tessera.path(CURATE),
                             log=context.log.info)
    m = build_sequences(tessera.path(CURATE), tessera.path(TOKENS), tessera.path(SEQUENCES),
                        tokenizer_ref=config.tokenizer, layout=config.layout, n_query=config.n_query,
                        max_length=config.max_length)
    return MaterializeResult(metadata={"images_tokenized": tokens["tokenized"],
                                       **{k: v for k, v in m.items() if isinstance(v, (int, float, str))}})


@asset_check(asset=document_stats, blocking=True,
             description="Every input document and every image occurrence has exactly one ingest outcome.")
def check_document_stats_accounting(tessera: TesseraResource) -> AssetCheckResult:
    from pipelines.core.accounting import accounting_holds, flat
    from pipelines.folders import track_levels

    levels = track_levels("documents", tessera.path(INGEST))
    return AssetCheckResult(passed=accounting_holds(levels), metadata=flat(levels))


@asset_check(asset=curated_documents, blocking=True,
             description="Every document and image occurrence is in the ledgers once; kept images = curated keys.")
def check_curated_documents_accounting(tessera: TesseraResource) -> AssetCheckResult:
    from pipelines.core.accounting import accounting_holds, flat
    from pipelines.folders import track_levels

    levels = track_levels("documents", tessera.path(CURATE))
    return AssetCheckResult(passed=accounting_holds(levels), metadata=flat(levels))


document_ingest_job = define_asset_job(
    "document_ingest_job", selection=AssetSelection.assets(raw_documents, document_images),
    description="Parse one MMC4/OBELICS file and download the images of its documents.",
)


document_files_sensor = source_files_sensor(
    "document_files_sensor", document_files, document_ingest_job, PATTERNS,
    "Adds a `document_files` partition for each new file under INPUT/mmc4 and INPUT/obelics and ingests it.",
)


INGEST_ASSETS = [raw_documents, document_images]
ASSETS = [raw_documents, document_images, document_stats, curated_documents, document_sequences]
CHECKS = [check_document_stats_accounting, check_curated_documents_accounting]

defs = Definitions(
    assets=[*INGEST_ASSETS, *automated([document_stats, curated_documents, document_sequences])],
    asset_checks=CHECKS, jobs=[document_ingest_job], sensors=[document_files_sensor],
)
