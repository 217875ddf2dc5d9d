"""The Spark path (`--engine spark`) gives the same selection as the DuckDB + pyarrow path on the same input."""

from __future__ import annotations

import pytest

from curate_testdata import build_ingest
from pipelines.curate.presets import PRESETS, build_stages
from pipelines.curate.scoring import ScoringOptions, score_shards
from pipelines.curate.selection import apply_stages, load_pool, run_selection, select_pool
from pipelines.curate.spark import SparkFilter, split_spark_stages
from pipelines.curate.stages.caption_language_filter import CaptionLanguageFilter
from pipelines.curate.stages.near_duplicate_filter import NearDuplicateFilter
from pipelines.curate.stats import curate_stats

COLUMNS = ["key", "drop_stage", "drop_reason", "drop_value", "duplicate_of"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_CACHE", str(tmp_path_factory.mktemp("tessera_cache")))
    mp.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    root = tmp_path_factory.mktemp("spark")
    ingest, out = build_ingest(root / "ingest"), root / "out"
    score_shards(ingest, out, ScoringOptions(clip_model="tiny"))
    yield ingest, out
    mp.undo()


@pytest.fixture(scope="module")
def spark(scored):
    from pipelines.curate.spark import spark_session

    session = spark_session()
    yield session
    session.stop()


@pytest.mark.slow
@pytest.mark.parametrize("preset, overrides", [
    ("coyo", {"near_dup_distance": 4}),
    ("datacomp_clip_l14_30pct", {}),
])
def test_spark_and_duckdb_select_the_same(scored, spark, preset, overrides):
    ingest, out = scored
    stages = build_stages(PRESETS[preset], **overrides)
    local = apply_stages(stages, load_pool(ingest, out)).select(COLUMNS).sort_by("key").to_pylist()
    remote = select_pool(ingest, out, stages, engine="spark", spark=spark).select(COLUMNS).sort_by("key").to_pylist()
    assert remote == local
    kept = sum(r["drop_reason"] is None for r in local)
    assert 0 < kept < len(local)  # the comparison is not vacuous
    if preset == "coyo":  # the metadata-only COYO rules run on Spark, not after it
        assert {"image_file_too_small", "nsfw_score_gantman_above_max"} <= {r["drop_reason"] for r in remote}
        on_spark, _ = split_spark_stages(stages)
        assert {"image_file_size", "metadata"} <= {s.name for s in on_spark}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_metadata_only_stage_has_a_spark_form(preset):
    stages = build_stages(PRESETS[preset], near_dup_distance=4)
    on_spark, local = split_spark_stages(stages)
    assert all(isinstance(s, SparkFilter) for s in on_spark)
    # Spark stops at the first Python-only stage (caption language or image dedup), never earlier.
    assert local and type(local[0]) in (CaptionLanguageFilter, NearDuplicateFilter)
    assert not isinstance(NearDuplicateFilter(), SparkFilter)


@pytest.mark.slow
def test_run_selection_on_spark_keeps_the_invariant(scored, spark):
    ingest, out = scored
    summary = run_selection(ingest, out, build_stages(PRESETS["datacomp_basic"]), engine="spark",
                            extra_summary={"ingest_out": str(ingest)})
    assert summary["selection_engine"] == "spark" and summary["samples"] == 27
    stats = curate_stats(out)
    assert stats["invariant"]["ok"] and stats["kept"] == summary["kept"]
