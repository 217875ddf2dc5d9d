"""The Spark path (`--engine spark`) gives the same selection as the DuckDB + pyarrow path on the same input."""

from __future__ import annotations

import pytest

from curate_testdata import build_ingest
from pipelines.curate.presets import PRESETS, build_stages
from pipelines.curate.scoring import ScoringOptions, score_shards
from pipelines.curate.selection import apply_stages, load_pool, run_selection
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
    from pipelines.curate.spark import spark_select

    ingest, out = scored
    stages = build_stages(PRESETS[preset], **overrides)
    local = apply_stages(stages, load_pool(ingest, out)).select(COLUMNS).sort_by("key").to_pylist()
    remote = spark_select(ingest, out, stages, spark).select(COLUMNS).sort_by("key").to_pylist()
    assert remote == local
    kept = sum(r["drop_reason"] is None for r in local)
    assert 0 < kept < len(local)  # the comparison is not vacuous
    if preset == "coyo":  # the metadata-only COYO rules run on Spark, not after it
        assert {"image_file_too_small", "nsfw_score_gantman_above_max"} <= {r["drop_reason"] for r in remote}


@pytest.mark.slow
def test_run_selection_on_spark_keeps_the_invariant(scored, spark):
    ingest, out = scored
    summary = run_selection(ingest, out, build_stages(PRESETS["datacomp_basic"]), engine="spark",
                            extra_summary={"ingest_out": str(ingest)})
    assert summary["selection_engine"] == "spark" and summary["samples"] == 27
    stats = curate_stats(out)
    assert stats["invariant"]["ok"] and stats["kept"] == summary["kept"]
