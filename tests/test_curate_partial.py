"""Selection while some finished shards are not scored yet (Dagster: one partition's clip_scores done, another's
pending): the scored shards are selected, the others listed, and the invariant covers exactly the scored ones."""

from __future__ import annotations

import json

import pytest

from curate_testdata import build_ingest
from pipelines.curate.presets import PRESETS, build_stages
from pipelines.curate.scoring import ScoringOptions, score_shards
from pipelines.curate.selection import pool_inputs, run_selection
from pipelines.curate.stats import curate_stats, invariant
from pipelines.core.errors import TesseraUserError


@pytest.fixture()
def ingest(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path / "cache"))
    return build_ingest(tmp_path / "ingest")


def test_selection_covers_scored_shards_and_lists_the_rest(ingest, tmp_path, caplog):
    out = tmp_path / "out"
    with pytest.raises(TesseraUserError, match="no scored shards"):
        pool_inputs(ingest, out)
    score_shards(ingest, out, ScoringOptions(clip_model="tiny"), shard_ids={"00000", "00001"})
    stages = build_stages(PRESETS["datacomp_basic"])
    with caplog.at_level("WARNING", logger="pipelines.curate.selection"):
        summary = run_selection(ingest, out, stages, extra_summary={"ingest_out": str(ingest)})
    assert "not scored yet: 00002" in caplog.text
    assert summary["shards"] == ["00000", "00001"] and summary["unscored_shards"] == ["00002"]
    assert summary["samples"] == 18
    assert json.loads((out / "curate_stats.json").read_text())["unscored_shards"] == ["00002"]
    assert sorted(p.stem for p in (out / "curated").glob("*.parquet")) == ["00000", "00001"]
    inv = invariant(out, ingest)
    assert (inv["success"], inv["missing"], inv["duplicated"], inv["unknown"]) == (18, 0, 0, 0)
    assert (inv["shards"], inv["unscored_shards"]) == (2, 1)
    assert curate_stats(out)["invariant"]["ok"]

    # The other partition's scores land later: the next selection covers every shard and leaves none out.
    score_shards(ingest, out, ScoringOptions(clip_model="tiny"), shard_ids={"00002"})
    summary = run_selection(ingest, out, stages, extra_summary={"ingest_out": str(ingest)})
    assert summary["unscored_shards"] == [] and summary["samples"] == 27
    inv = invariant(out, ingest)
    assert (inv["success"], inv["missing"], inv["unscored_shards"]) == (27, 0, 0)


def test_invariant_still_catches_a_missing_sample_of_a_scored_shard(ingest, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    score_shards(ingest, out, ScoringOptions(clip_model="tiny"), shard_ids={"00000"})
    run_selection(ingest, out, build_stages(PRESETS["laion2b"]), extra_summary={"ingest_out": str(ingest)})
    curated = pq.read_table(out / "curated" / "00000.parquet")
    dropped = pq.read_table(out / "dropped" / "00000.parquet")
    assert curated.num_rows + dropped.num_rows == 9
    pq.write_table(dropped.slice(1), out / "dropped" / "00000.parquet")  # lose one ledger row
    inv = invariant(out, ingest)
    assert (inv["missing"], inv["shards"], inv["unscored_shards"]) == (1, 1, 2)
