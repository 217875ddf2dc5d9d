"""The Spark path (`--engine spark`) gives the same selection as the local path on the same input, key for key: the
whole chain (language id, pHash near-dup, the exact top fraction with ties) runs on Spark and the executors write
curated/ and dropped/ with the local schemas."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import mark_finished
from curate_testdata import build_ingest
from pipelines.core.shards import complete_shards
from pipelines.curate.presets import PRESETS, build_stages
from pipelines.curate.scoring import SCORE_SCHEMA, ScoringOptions, score_shards
from pipelines.curate.selection import apply_stages, load_pool, run_selection, select_pool
from pipelines.curate.spark import has_spark_form, split_spark_stages
from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter, pool_threshold
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


def files(folder: Path) -> dict[str, tuple[pa.Schema, list[dict]]]:
    """Each shard file of a curated/ or dropped/ folder: its schema and rows."""
    return {p.name: (pq.read_schema(p).remove_metadata(), pq.read_table(p).to_pylist())
            for p in sorted(Path(folder).glob("*.parquet"))}


def same_outcome(local: Path, remote: Path) -> None:
    """The two runs wrote the same files, schemas and rows (in order), and the same summary counts."""
    for name in ("curated", "dropped"):
        assert files(remote / name) == files(local / name), name
    ls, rs = (curate_stats(p) for p in (local, remote))
    assert {k: ls[k] for k in ("kept", "dropped", "dropped_by_reason")} == \
        {k: rs[k] for k in ("kept", "dropped", "dropped_by_reason")}


@pytest.mark.slow
@pytest.mark.parametrize("preset, overrides", [
    ("coyo", {"near_dup_distance": 4}),
    ("datacomp_basic", {}),
    ("datacomp_clip_l14_30pct", {}),
])
def test_spark_and_local_select_the_same(scored, spark, preset, overrides):
    ingest, out = scored
    stages = build_stages(PRESETS[preset], **overrides)
    local = apply_stages(stages, load_pool(ingest, out)).select(COLUMNS).sort_by("key").to_pylist()
    remote = select_pool(ingest, out, stages, engine="spark", spark=spark).select(COLUMNS).sort_by("key").to_pylist()
    assert remote == local
    kept = sum(r["drop_reason"] is None for r in local)
    assert 0 < kept < len(local)  # the comparison is not vacuous
    reasons = {r["drop_reason"] for r in remote}
    if preset == "coyo":  # every COYO rule fired, language id and near-dup included, on Spark
        assert {"image_file_too_small", "nsfw_score_gantman_above_max", "caption_language",
                "near_duplicate_image"} <= reasons
    if preset == "datacomp_basic":
        assert "caption_language" in reasons


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_stage_has_a_spark_form(preset):
    stages = build_stages(PRESETS[preset], near_dup_distance=4)
    on_spark, local = split_spark_stages(stages)
    assert on_spark == stages and local == []
    assert all(has_spark_form(s) for s in stages)


@pytest.mark.slow
def test_run_selection_on_spark_writes_what_the_local_run_writes(scored, spark, tmp_path):
    ingest, out = scored
    stages = build_stages(PRESETS["coyo"], near_dup_distance=4)
    summaries = {}
    for engine in ("local", "spark"):
        dest = tmp_path / engine
        dest.mkdir()
        (dest / "scores").symlink_to(out / "scores", target_is_directory=True)
        summaries[engine] = run_selection(ingest, dest, stages, engine=engine,
                                          extra_summary={"ingest_out": str(ingest)})
    same_outcome(tmp_path / "local", tmp_path / "spark")
    local, remote = summaries["local"], summaries["spark"]
    assert remote["selection_engine"] == "spark" and remote["samples"] == 27
    assert {k: v for k, v in remote.items() if k != "selection_engine"} == \
        {k: v for k, v in local.items() if k != "selection_engine"}
    assert curate_stats(tmp_path / "spark")["invariant"]["ok"]


# Crafted pHashes (64 bits, as hex) around H: a chain H -> A (3 bits) -> B (3 more, 6 from H), identical copies of H
# and A, and C at distance 2 from both H and A (closest: H, smaller distance).
H = 0x0F0F_0F0F_0F0F_0F0F
A, B, C = H ^ 0b111, H ^ 0b111 ^ (0b111 << 20), H ^ (0b11 << 40)
HASHES = [H, A, B, H, A, C] + [H ^ (0xFFFF << (16 * (i % 4))) ^ (i << 8) for i in range(21)]
SCORES = [0.30, 0.30, 0.30, 0.25, 0.25] + [0.20] * 7 + [0.10 + 0.001 * i for i in range(15)]


@pytest.fixture(scope="module")
def crafted(scored, tmp_path_factory):
    """The same ingest with hand-written scores: ties at the threshold and near-duplicate chains."""
    ingest, _ = scored
    out = tmp_path_factory.mktemp("crafted")
    i = 0
    for shard in complete_shards(ingest):
        keys = [k for k, s in zip(*pq.read_table(shard.parquet, columns=["key", "status"]).to_pydict().values())
                if s == "success"]
        n = len(keys)
        table = pa.table({"key": keys, "clip_score": SCORES[i:i + n], "model": ["crafted"] * n,
                          "clip_error": [None] * n, "embedding_ref": [None] * n,
                          "phash": [f"{h:016x}" for h in HASHES[i:i + n]], "image_bytes": [10_000] * n},
                         schema=SCORE_SCHEMA)
        i += n
        rel = f"scores/{shard.shard_id}.parquet"
        (out / "scores").mkdir(exist_ok=True)
        pq.write_table(table, out / rel)
        mark_finished(out, "scores", shard.shard_id, [rel], {"samples": n, "model": "crafted"})
    assert i == len(HASHES) == len(SCORES)
    return ingest, out


@pytest.mark.slow
def test_ties_at_the_threshold_and_near_dup_chains_on_spark(crafted, spark, tmp_path):
    ingest, out = crafted
    # 27 scores, top 3/27: k = 3, the k-th score 0.30 is tied; 8/27: k = 8 falls inside the seven 0.20s.
    for fraction, threshold, kept in ((3 / 27, 0.30, 3), (8 / 27, 0.20, 12)):
        assert pool_threshold(SCORES, fraction) == pytest.approx(threshold)
        stages = [ClipTopFractionFilter(fraction=fraction), NearDuplicateFilter(max_distance=4)]
        summaries = {}
        for engine in ("local", "spark"):
            dest = tmp_path / f"{engine}{kept}"
            dest.mkdir()
            (dest / "scores").symlink_to(out / "scores", target_is_directory=True)
            summaries[engine] = run_selection(ingest, dest, stages, engine=engine)
        same_outcome(tmp_path / f"local{kept}", tmp_path / f"spark{kept}")
        assert summaries["spark"]["clip_threshold"] == pytest.approx(threshold)
        assert summaries["spark"]["clip_threshold"] == summaries["local"]["clip_threshold"]
        top = summaries["spark"]["samples"] - summaries["spark"]["dropped_by_reason"]["clip_score_below_pool_fraction"]
        assert top == kept  # every tied score at the threshold stays
    ledger = {r["key"]: r for _, rows in files(tmp_path / "spark12" / "dropped").values() for r in rows}
    near = {k: (r["value"], r["duplicate_of"]) for k, r in ledger.items() if r["reason"] == "near_duplicate_image"}
    keys = sorted(k for k, s in zip(*pq.read_table(complete_shards(ingest)[0].parquet,
                                                   columns=["key", "status"]).to_pydict().values()) if s == "success")
    h, a, b, h2, a2, c = keys[:6]
    # A is H's near duplicate; B (6 bits from H) is kept: its only neighbour A was dropped. The copies of H and A
    # go to the closest earlier kept row (H at 0 and 3 bits), C to H (2 bits).
    assert near[a] == (3.0, h) and b not in ledger and h not in ledger
    assert near[h2] == (0.0, h) and near[a2] == (3.0, h) and near[c] == (2.0, h)
