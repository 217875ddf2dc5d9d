"""The sharded selection (per-shard rules, exact histogram threshold, bucketed dedups) decides exactly as the filter
chain over one pool table (`apply_stages`, the reference), key for key, on the demo-style and a holdout-style input."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate_testdata import build_ingest, sample_rows
from pipelines.curate.presets import PRESETS, build_stages
from pipelines.curate.scoring import SCORES_DIR, ScoringOptions, score_shards
from pipelines.curate.selection import apply_stages, load_pool, run_selection
from pipelines.curate.stages.clip_top_fraction_filter import pool_threshold
from pipelines.curate.stages.metadata_filter import MetadataRule
from pipelines.curate.threshold import HISTOGRAM, exact_threshold, histogram

COLUMNS = ["key", "drop_stage", "drop_reason", "drop_value", "duplicate_of"]


def holdout_rows() -> list[dict]:
    """Ties at the threshold (identical image + caption, so identical scores), the same image and caption in every
    shard, a caption repeated past COYO's cap of 10, and re-encoded images (near duplicates) across shards."""
    tie = "a photo of a red house by the lake at noon"
    rows = [{"caption": tie, "seed": 7, "w": 640, "h": 480} for _ in range(8)]
    rows += [{"caption": "the same words under many different photos", "seed": 200 + i, "w": 640, "h": 480}
             for i in range(13)]
    rows += [{"caption": f"a green boat on a river number {i}", "seed": 300 + i, "w": 640, "h": 480}
             for i in range(10)]
    rows += [{"caption": f"a green boat on a river copy {i}", "seed": 300 + i, "w": 640, "h": 480, "quality": 35}
             for i in range(5)]
    for i, row in enumerate(rows):
        row["url"], row["nsfw"] = f"http://holdout.test/{i}.jpg", 0.1
    order = np.random.default_rng(0).permutation(len(rows))  # spread every group over the shards
    return [rows[i] for i in order]


def reference(ingest, out, stages) -> list[dict]:
    table = apply_stages(stages, load_pool(ingest, out))
    return table.select(COLUMNS).sort_by("key").to_pylist()


def sharded(ingest, out, stages) -> tuple[list[dict], dict]:
    summary = run_selection(ingest, out, stages, extra_summary={"ingest_out": str(ingest)})
    kept = pa.concat_tables([pq.read_table(p) for p in sorted((out / "curated").glob("*.parquet"))])
    drops = pa.concat_tables([pq.read_table(p) for p in sorted((out / "dropped").glob("*.parquet"))])
    rows = [{"key": k, "drop_stage": None, "drop_reason": None, "drop_value": None, "duplicate_of": None}
            for k in kept["key"].to_pylist()]
    rows += [{"key": r["key"], "drop_stage": r["stage"], "drop_reason": r["reason"], "drop_value": r["value"],
              "duplicate_of": r["duplicate_of"]} for r in drops.to_pylist()]
    for (sid, name) in ((p.stem, p.parent.name) for p in (out / "curated").glob("*.parquet")):
        assert set(pq.read_table(out / name / f"{sid}.parquet")["shard"].to_pylist()) <= {sid}
    return sorted(rows, key=lambda r: r["key"]), summary


def _same(a: list[dict], b: list[dict]) -> None:
    def norm(rows):
        return [{**r, "drop_value": None if r["drop_value"] is None or math.isnan(r["drop_value"])
                 else r["drop_value"]} for r in rows]
    assert norm(a) == norm(b)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_CACHE", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("sharded")
    ingest, out = build_ingest(root / "ingest", sample_rows()), root / "out"
    score_shards(ingest, out, ScoringOptions(clip_model="tiny"))
    hold_ingest, hold_out = build_ingest(root / "hold_ingest", holdout_rows(), per_shard=7), root / "hold_out"
    score_shards(hold_ingest, hold_out, ScoringOptions(clip_model="tiny"))
    yield (ingest, out), (hold_ingest, hold_out)
    mp.undo()


@pytest.mark.parametrize("preset, overrides", [
    ("coyo", {"near_dup_distance": 4}),
    ("datacomp_clip_l14_30pct", {}),
    ("datacomp_basic", {"extra_rules": (MetadataRule(column="nsfw_score_opennsfw2", bound="max", value=0.5),)}),
    ("laion2b", {"min_clip_score": 0.0}),
])
def test_demo_input_sharded_equals_pool_wide(demo, preset, overrides):
    ingest, out = demo[0]
    stages = build_stages(PRESETS[preset], **overrides)
    want = reference(ingest, out, stages)
    got, summary = sharded(ingest, out, stages)
    _same(got, want)
    assert 0 < summary["kept"] < summary["samples"] == len(want)


def test_holdout_ties_and_cross_shard_duplicates(demo):
    ingest, out = demo[1]
    scores = np.concatenate([pq.read_table(p)["clip_score"].to_numpy() for p in (out / SCORES_DIR).glob("*.parquet")
                             if not p.name.startswith(".")]).astype(np.float64)
    desc = np.sort(scores)[::-1]
    values, counts = np.unique(desc, return_counts=True)
    tie_value = values[np.argmax(counts)]  # the 8 identical rows score the same
    first = int(np.flatnonzero(desc == tie_value)[0])
    fraction = (first + 2.5) / len(desc)  # k falls inside the tied group
    assert counts.max() >= 8 and pool_threshold(scores, fraction) == tie_value
    for preset, overrides in (("datacomp_clip_l14_30pct", {"top_fraction": fraction}),
                              ("coyo", {"near_dup_distance": 10}), ("coyo", {"near_dup_distance": 2})):
        stages = build_stages(PRESETS[preset], **overrides)
        want = reference(ingest, out, stages)
        got, summary = sharded(ingest, out, stages)
        _same(got, want)
        reasons = {r["drop_reason"] for r in want}
        if preset == "coyo":
            assert {"duplicate_image", "caption_repeated"} <= reasons
            assert any(r["drop_reason"] == "near_duplicate_image" for r in want) or overrides["near_dup_distance"] < 4
            cross = [r for r in want if r["duplicate_of"] and r["duplicate_of"][:5] != r["key"][:5]]
            assert cross  # winners in another shard than their duplicates
        else:
            assert summary["clip_threshold"] == tie_value
            low = [r["drop_value"] for r in want if r["drop_stage"] == "clip_top_fraction"]
            assert low and max(low) < tie_value  # every tie at the threshold passes the top fraction, past k too
            assert sum(r["drop_reason"] == "duplicate_image" for r in want) >= 7  # the tied copies, by sha256


def test_old_score_markers_without_histograms_give_the_same_threshold(demo):
    ingest, out = demo[0]
    stages = build_stages(PRESETS["datacomp_clip_l14_30pct"])
    before = run_selection(ingest, out, stages)["clip_threshold"]
    for marker in (out / SCORES_DIR).glob("*_stats.json"):
        data = json.loads(marker.read_text())
        assert data[HISTOGRAM]["counts"]
        data.pop(HISTOGRAM)
        marker.write_text(json.dumps(data))
    assert run_selection(ingest, out, stages)["clip_threshold"] == before
    scores = load_pool(ingest, out)["clip_score"].to_numpy(zero_copy_only=False).astype(np.float64)
    assert before == pool_threshold(scores, 0.3)


def test_exact_threshold_matches_pool_threshold_on_ties_and_edges(tmp_path):
    rng = np.random.default_rng(1)
    parts = [np.round(rng.normal(0.2, 0.3, 500), 3), np.full(40, 0.25), np.array([-1.0, 1.0, 2.0, -3.0, np.nan]),
             np.linspace(-1, 1, 4097)]
    files = []
    for i, part in enumerate(parts):
        files.append(tmp_path / f"{i}.parquet")
        pq.write_table(pa.table({"clip_score": pa.array(part.astype(np.float32), from_pandas=True)}), files[-1])
    scores = np.concatenate([p.astype(np.float32) for p in parts]).astype(np.float64)
    hists = [histogram(p.astype(np.float32).astype(np.float64)) for p in parts]
    for fraction in (1e-4, 0.01, 0.1, 0.3, 0.5, 0.77, 0.999, 1.0):
        assert exact_threshold(hists, files, fraction) == pool_threshold(scores, fraction)
    assert exact_threshold([histogram([])], [], 0.3) == math.inf
