"""The pair track's `metadata_files` dynamic partitions: one per metadata parquet file under `INPUT/<source>/` (key
`laion__part-00.parquet`) or directly in INPUT (the key is the file name), keyed as `assets.source_files` keys them."""

from pathlib import Path

from dagster import DynamicPartitionsDefinition

from pipelines.ingest.partitions import PAIR_PARTITIONS
from pipelines.ingest.sources import SOURCES

metadata_files = DynamicPartitionsDefinition(name="metadata_files")
PATTERNS = {source: ("*.parquet",) for source in SOURCES}
TOP_LEVEL = ("*.parquet",)  # read with the resource's default_source


def partition_shard_ids(ingest_out: Path, key: str) -> set[str]:
    """The shard ids (`00012`) that a partition's ingest owns; a partition that was never ingested is an error."""
    manifest = PAIR_PARTITIONS.get(ingest_out, key)
    if manifest is None:
        raise RuntimeError(f"partition {key} was not ingested into {ingest_out}; materialize image_shards first")
    return {f"{sid:05d}" for sid in manifest.shard_ids}
