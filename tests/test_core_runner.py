"""The runner refuses to split a whole-pool stage (dedup, top fraction) into batches or hand it to Ray."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.core.runner import StageRunner
from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter
from pipelines.curate.stages.duplicate_filter import DuplicateFilter
from pipelines.curate.stages.image_size_filter import ImageSizeFilter
from pipelines.curate.stages.near_duplicate_filter import NearDuplicateFilter


@pytest.fixture
def table() -> pa.Table:
    # Duplicates sit in different batches of 4: split, the dedup would miss them.
    return pa.table({"key": [f"{i:02d}" for i in range(10)], "url": [f"u{i % 5}" for i in range(10)],
                     "original_width": [300] * 10, "original_height": [300] * 10})


def test_whole_pool_stages_say_so():
    assert DuplicateFilter.whole_pool and ClipTopFractionFilter.whole_pool and NearDuplicateFilter.whole_pool
    assert not ImageSizeFilter.whole_pool


def test_runner_refuses_to_batch_a_whole_pool_stage(table):
    dedup = DuplicateFilter(columns=("url",), reason="duplicate_url")
    with pytest.raises(ValueError, match="DuplicateFilter must see the whole table.*in batches of 4"):
        StageRunner(engine="local", batch_size=4).run([ImageSizeFilter(min_short_side=200), dedup], table)


def test_runner_refuses_a_whole_pool_stage_under_ray(table):
    with pytest.raises(ValueError, match="ClipTopFractionFilter .*under Ray map_batches"):
        StageRunner(engine="ray", batch_size=64).run(ClipTopFractionFilter(fraction=0.3), table)


def test_whole_pool_stage_runs_when_the_table_is_one_batch(table):
    dedup = DuplicateFilter(columns=("url",), reason="duplicate_url")
    out = StageRunner(engine="local", batch_size=10).run(dedup, table)
    assert out["drop_reason"].to_pylist() == [None] * 5 + ["duplicate_url"] * 5
    assert out.equals(dedup(table))
    batched = StageRunner(engine="local", batch_size=4).run(ImageSizeFilter(min_short_side=200), table)
    assert batched.num_rows == 10  # stages that work row by row still batch freely


def test_local_ray_run_gives_its_cpus_back_before_the_next_run(table):
    """On a 2-core machine the actor pools hold every CPU; a run started before they are back (the next shard) made
    Ray Data warn that the cluster has no available CPUs and the job "will hang"."""
    import logging

    import ray
    from ray.util import debug

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("ray.data").addHandler(handler)
    debug._logged.discard("cpu_warning")  # Ray warns once per process; an earlier test may have used that up
    stages = [ImageSizeFilter(min_short_side=200), ImageSizeFilter(min_short_side=400)]
    free_after = []
    try:
        runs = []
        for _ in range(2):
            runs.append(StageRunner(engine="ray", batch_size=2, num_actors=1).run(stages, table))
            free_after.append(ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"])
    finally:
        logging.getLogger("ray.data").removeHandler(handler)
        ray.shutdown()
    assert all(run.equals(StageRunner(engine="local", batch_size=2).run(stages, table)) for run in runs)
    assert free_after == [True, True]
    assert not [m for m in records if "available CPUs" in m], records
