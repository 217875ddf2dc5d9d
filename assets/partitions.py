"""The `metadata_files` dynamic partitions: one partition per metadata parquet file found in the input folder."""

from pathlib import Path

from dagster import DynamicPartitionsDefinition

from pipelines.ingest.partitions import load_manifests
from pipelines.ingest.sources import SOURCES

metadata_files = DynamicPartitionsDefinition(name="metadata_files")

SEP = "__"


def partition_key(input_dir: Path, path: Path) -> str:
    """`laion__part-00.parquet` for `INPUT/laion/part-00.parquet`; a file directly in INPUT keeps its name."""
    rel = Path(path).relative_to(input_dir)
    return SEP.join(rel.parts)


def _split(key: str) -> tuple[str | None, str]:
    head, sep, rest = key.partition(SEP)
    return (head, rest) if sep and head in SOURCES else (None, key)


def partition_file(input_dir: Path, key: str) -> Path:
    """The metadata file a partition key names (only a known source's folder is a subfolder: `a__b.parquet` stays)."""
    source, name = _split(key)
    return Path(input_dir) / source / name if source else Path(input_dir) / name


def partition_source(key: str, default_source: str) -> str:
    """Files under a folder named after a source use that source; others use the default."""
    return _split(key)[0] or default_source


def partition_shard_ids(ingest_out: Path, key: str) -> set[str]:
    """The shard ids (`00012`) that a partition's ingest owns; a partition that was never ingested is an error."""
    manifest = next((m for m in load_manifests(ingest_out) if m.name == key), None)
    if manifest is None:
        raise RuntimeError(f"partition {key} was not ingested into {ingest_out}; materialize image_shards first")
    return {f"{sid:05d}" for sid in manifest.shard_ids}


def discover_files(input_dir: Path) -> list[Path]:
    """Metadata parquet files in `input_dir` and in its per-source subfolders."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        return []
    found = list(input_dir.glob("*.parquet"))
    for source in SOURCES:
        found += list((input_dir / source).glob("*.parquet"))
    return sorted(found)
