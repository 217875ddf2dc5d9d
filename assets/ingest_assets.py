"""Ingest assets: `raw_metadata` and `image_shards` per metadata file, `shard_stats` over the whole folder."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets.partitions import metadata_files, partition_file, partition_source
from assets.resources import TesseraResource
from pipelines.core import schema as S
from pipelines.ingest.image_downloader import ImageDownloader
from pipelines.ingest.sequence import write_sizes
from pipelines.stats.ingest_stats import ingest_stats, run_query
from pipelines.ingest.metadata_preparer import MetadataPreparer
from pipelines.ingest.partitions import dataset_samples_per_shard, load_manifests, locked
from pipelines.core.shard_io import write_json_atomic


@asset(partitions_def=metadata_files, group_name="ingest", kinds={"duckdb", "parquet"})
def raw_metadata(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """One metadata file in the canonical schema; rows with missing, invalid or already-seen URLs go to rejects."""
    key = context.partition_key
    out = tessera.path("ingest")
    with locked(out):
        per_shard = dataset_samples_per_shard(out, tessera.samples_per_shard)
    source = partition_source(key, tessera.default_source)
    manifest = MetadataPreparer(out, per_shard).prepare(source, [partition_file(tessera.input_dir, key)], key)
    context.log.info(f"{key}: {manifest.accepted} rows to download, {manifest.rejected} rejected")
    return MaterializeResult(metadata={
        "source": source, "input_rows": manifest.input_rows, "accepted": manifest.accepted,
        "rejected": manifest.rejected, "shards": f"{manifest.start_shard_id:05d}+{manifest.n_shards}",
    })


@asset(partitions_def=metadata_files, deps=[raw_metadata], group_name="ingest", kinds={"img2dataset", "webdataset"})
def image_shards(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """The partition's images, downloaded by img2dataset into webdataset shards with per-row status sidecars."""
    key = context.partition_key
    out = tessera.path("ingest")
    manifest = next((m for m in load_manifests(out) if m.name == key), None)
    if manifest is None:
        raise RuntimeError(f"partition {key} has no manifest; materialize raw_metadata for it first")
    finished = ImageDownloader(tessera.download_config()).download(
        out / S.PREPARED_DIR / f"{key}.parquet", out / S.SHARDS_DIR, manifest
    )
    with locked(out):
        sizes = write_sizes(out)
    missing = set(manifest.shard_ids) - finished
    if missing:
        raise RuntimeError(f"{len(missing)} shard(s) of {key} did not finish; rematerialize to resume")
    success = sum(sizes.get(f"{sid:05d}.tar", 0) for sid in manifest.shard_ids)
    return MaterializeResult(metadata={
        "shards": manifest.n_shards, "attempted": manifest.accepted, "success": success,
        "success_rate": round(success / manifest.accepted, 4) if manifest.accepted else 0.0,
    })


@asset(
    deps=[image_shards], group_name="ingest", kinds={"duckdb"},
    automation_condition=AutomationCondition.eager(),
)
def shard_stats(context: AssetExecutionContext, tessera: TesseraResource) -> MaterializeResult:
    """Counts by status and reason, error classes, sizes and caption lengths over all shards (sql/stats_*.sql)."""
    out = tessera.path("ingest")
    stats = ingest_stats(out)
    write_json_atomic(stats, out / "shard_stats.json")
    outcomes = "\n".join(f"| {r['outcome']} | {r['detail']} | {r['n']} |" for r in stats["outcomes"])
    return MaterializeResult(metadata={
        **{k: stats[k] for k in ("input_rows", "success", "failed", "rejected", "shards")},
        "success_rate": float(stats["success_rate"]),
        "outcomes": MetadataValue.md("| outcome | detail | rows |\n|---|---|---|\n" + outcomes),
    })


@asset_check(asset=shard_stats, description="Every input row is in exactly one shard sidecar or in rejects.")
def check_shard_stats_accounting(tessera: TesseraResource) -> AssetCheckResult:
    row = run_query(tessera.path("ingest"), "check_accounting")[0]
    ok = row["missing"] == 0 and row["duplicated"] == 0 and row["duplicate_keys"] == 0
    return AssetCheckResult(passed=ok, metadata={k: int(v) for k, v in row.items()})


@asset_check(asset=shard_stats, description="Download success rate is above the configured floor.")
def check_shard_stats_success_rate(tessera: TesseraResource) -> AssetCheckResult:
    row = run_query(tessera.path("ingest"), "check_success_rate")[0]
    rate = float(row["success_rate"])
    return AssetCheckResult(
        passed=rate >= tessera.min_success_rate, severity=AssetCheckSeverity.WARN,
        metadata={"success_rate": rate, "floor": tessera.min_success_rate, "attempted": int(row["attempted"])},
    )


ASSETS = [raw_metadata, image_shards, shard_stats]
CHECKS = [check_shard_stats_accounting, check_shard_stats_success_rate]
INGEST_KEYS = [AssetKey("raw_metadata"), AssetKey("image_shards")]
