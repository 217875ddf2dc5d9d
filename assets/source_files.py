"""Input files that become dynamic partitions, one per file under `INPUT/<source>/` (every track), and for a track
that allows it one per file directly in INPUT (pairs: such a file is read with the resource's `default_source`).

A partition key is `<source>__<file name>` (`laion__part-00.parquet`); a file directly in INPUT keeps its name
(`top.parquet`). Each track's sensor adds a partition for each new file and runs the track's ingest job on it.
No `from __future__ import annotations`: Dagster resolves the sensor's resource annotation.
"""

from pathlib import Path
from typing import Mapping, Optional, Sequence

from dagster import (
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from assets.automation import SENSOR_INTERVAL_S
from assets.resources import TesseraResource

SEP = "__"


def discover_source_files(input_dir: Path, patterns: Mapping[str, Sequence[str]],
                          top_level: Sequence[str] = ()) -> list[str]:
    """Partition keys for the files under `INPUT/<source>/` matching that source's globs, and (named as they are)
    for the files directly in INPUT matching `top_level`."""
    input_dir = Path(input_dir)
    keys = [f"{source}{SEP}{p.name}" for source, globs in patterns.items() for pattern in globs
            for p in (input_dir / source).glob(pattern) if p.is_file()]
    keys += [p.name for pattern in top_level for p in input_dir.glob(pattern) if p.is_file()]
    return sorted(set(keys))


def source_file(input_dir: str | Path, key: str, sources: Sequence[str],
                default_source: Optional[str] = None) -> tuple[str, Path]:
    """The source and the input file a partition key names: `<source>__<name>` when `<source>` is one of
    `sources`, else a file directly in INPUT read as `default_source` (`a__b.parquet` stays one name)."""
    source, sep, name = key.partition(SEP)
    if sep and source in sources:
        return source, Path(input_dir) / source / name
    if default_source is None:
        raise ValueError(f"partition key {key!r} names no source of {', '.join(sources)}")
    return default_source, Path(input_dir) / key


def source_files_sensor(name: str, partitions: DynamicPartitionsDefinition, job, patterns: Mapping[str, Sequence[str]],
                        description: str, top_level: Sequence[str] = ()) -> SensorDefinition:
    """A sensor (RUNNING by default) that adds a partition for each new file of `patterns` (and of `top_level`
    directly in INPUT) and runs `job` on it."""

    @sensor(name=name, job=job, minimum_interval_seconds=SENSOR_INTERVAL_S, description=description,
            default_status=DefaultSensorStatus.RUNNING)
    def _files_sensor(context: SensorEvaluationContext, tessera: TesseraResource) -> SensorResult:
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new = [k for k in discover_source_files(Path(tessera.input_dir), patterns, top_level) if k not in known]
        return SensorResult(run_requests=[RunRequest(partition_key=k, run_key=k) for k in new],
                            dynamic_partitions_requests=[partitions.build_add_request(new)] if new else [])

    return _files_sensor
