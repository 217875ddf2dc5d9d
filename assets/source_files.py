"""Input files that become dynamic partitions, one per file under `INPUT/<source>/` (documents, video).

A partition key is `<source>__<file name>`; the sensor adds a partition for each new file and runs the area's
ingest job on it. No `from __future__ import annotations`: Dagster resolves the sensor's resource annotation.
"""

from pathlib import Path
from typing import Mapping, Sequence

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


def discover_source_files(input_dir: Path, patterns: Mapping[str, Sequence[str]]) -> list[str]:
    """Partition keys `<source>__<file name>` for the files under `INPUT/<source>/` that match that source's globs."""
    return sorted(f"{source}{SEP}{p.name}" for source, globs in patterns.items() for pattern in globs
                  for p in (Path(input_dir) / source).glob(pattern) if p.is_file())


def source_file(input_dir: str | Path, key: str) -> tuple[str, Path]:
    """The source and the input file that a `<source>__<file name>` partition key names."""
    source, _, name = key.partition(SEP)
    return source, Path(input_dir) / source / name


def source_files_sensor(name: str, partitions: DynamicPartitionsDefinition, job, patterns: Mapping[str, Sequence[str]],
                        description: str) -> SensorDefinition:
    """A sensor (RUNNING by default) that adds a partition for each new file of `patterns` and runs `job` on it."""

    @sensor(name=name, job=job, minimum_interval_seconds=SENSOR_INTERVAL_S, description=description,
            default_status=DefaultSensorStatus.RUNNING)
    def _files_sensor(context: SensorEvaluationContext, tessera: TesseraResource) -> SensorResult:
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new = [k for k in discover_source_files(Path(tessera.input_dir), patterns) if k not in known]
        return SensorResult(run_requests=[RunRequest(partition_key=k, run_key=k) for k in new],
                            dynamic_partitions_requests=[partitions.build_add_request(new)] if new else [])

    return _files_sensor
