"""Ingest assets: `raw_metadata` and `image_shards` per metadata file, `shard_stats` over the whole folder."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    asset,
    asset_check,
)

from assets.metadata import section_metadata
from assets.partitions import PATTERNS, metadata_files
from assets.resources import TesseraResource
from assets.source_files import source_file
from pipelines.core import schema as S
from pipelines.ingest.fetch.reasons import GUARD_REASONS
from pipelines.ingest.sequence import download_partition, partition_manifest, prepare_partition
from pipelines.stats.ingest_figures import ingest_section
from pipelines.stats.ingest_stats import ingest_stats, run_query
from pipelines.core.shard_io import read_json, write_json_atomic


@asset(partitions_def=metadata_files, group_name="ingest", kinds={"duckdb", "parquet"})
def raw_metadata(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """One metadata file in the canonical schema; rows with missing, invalid or already-seen URLs go to rejects."""
    key = context.partition_key
    source, path = source_file(tessera.input_dir, key, PATTERNS, tessera.default_source)
    manifest = prepare_partition(
        source, [path], tessera.path("ingest"), partition=key,
        samples_per_shard=tessera.samples_per_shard, wait=True,
    )
    context.log.info(f"{key}: {manifest.accepted} rows to download, {manifest.rejected} rejected")
    return MaterializeResult(metadata={
        "source": source, "input_rows": manifest.input_rows, "accepted": manifest.accepted,
        "rejected": manifest.rejected, "shards": f"{manifest.start_shard_id:05d}+{manifest.n_shards}",
    })


@asset(partitions_def=metadata_files, deps=[raw_metadata], group_name="ingest", kinds={"img2dataset", "webdataset"})
def image_shards(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """The partition's images, downloaded by img2dataset into webdataset shards with per-row status sidecars."""
    out = tessera.path("ingest")
    manifest = partition_manifest(out, context.partition_key)
    download_partition(out, manifest, tessera.download_config(), wait=True, progress=False,
                       warn=context.log.warning)
    sizes = read_json(out / S.SIZES_FILE, default={})
    success = sum(sizes.get(f"{sid:05d}.tar", 0) for sid in manifest.shard_ids)
    return MaterializeResult(metadata={
        "shards": manifest.n_shards, "attempted": manifest.accepted, "success": success,
        "success_rate": round(success / manifest.accepted, 4) if manifest.accepted else 0.0,
    })


@asset(deps=[image_shards], group_name="ingest", kinds={"duckdb"})
def shard_stats(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """Counts by status and reason, error classes, sizes and caption lengths over all shards (sql/stats_*.sql).

    Metadata: headline counts; tables of outcomes, failure reasons, error classes, image sizes and caption lengths;
    the outcome waterfall (input rows -> rejected -> failed by reason -> kept) and the image size scatter."""
    out = tessera.path("ingest")
    stats = ingest_stats(out)
    write_json_atomic(stats, out / "shard_stats.json")
    return MaterializeResult(metadata=section_metadata(ingest_section(out, stats)))


@asset_check(asset=shard_stats, blocking=True,
             description="Every input row is in exactly one shard sidecar or in rejects.")
def check_shard_stats_accounting(tessera: TesseraResource) -> AssetCheckResult:
    from pipelines.core.accounting import accounting_holds, flat
    from pipelines.folders import track_levels

    levels = track_levels("pairs", tessera.path("ingest"))
    return AssetCheckResult(passed=accounting_holds(levels), metadata=flat(levels))


@asset_check(asset=shard_stats, description="Download success rate is above the configured floor.")
def check_shard_stats_success_rate(tessera: TesseraResource) -> AssetCheckResult:
    row = run_query(tessera.path("ingest"), "check_success_rate")[0]
    rate = float(row["success_rate"])
    return AssetCheckResult(
        passed=rate >= tessera.min_success_rate, severity=AssetCheckSeverity.WARN,
        metadata={"success_rate": rate, "floor": tessera.min_success_rate, "attempted": int(row["attempted"])},
    )


@asset_check(asset=shard_stats,
             description="Refusals by the download guards (private addresses, caps, deadlines, robots.txt, rate "
                         "limits) stay under the configured share of attempted downloads.")
def check_shard_stats_guard_refusals(tessera: TesseraResource) -> AssetCheckResult:
    rows = run_query(tessera.path("ingest"), "stats_fail_reasons")
    attempted = int(run_query(tessera.path("ingest"), "check_success_rate")[0]["attempted"])
    counts = {r["reason"]: int(r["n"]) for r in rows}
    refused = sum(n for reason, n in counts.items() if reason in GUARD_REASONS)
    share = refused / attempted if attempted else 0.0
    return AssetCheckResult(
        passed=share <= tessera.max_guard_refusal_rate, severity=AssetCheckSeverity.WARN,
        metadata={"refused": refused, "attempted": attempted, "share": round(share, 4),
                  "ceiling": tessera.max_guard_refusal_rate, **counts},
    )


ASSETS = [raw_metadata, image_shards, shard_stats]
CHECKS = [check_shard_stats_accounting, check_shard_stats_success_rate, check_shard_stats_guard_refusals]
