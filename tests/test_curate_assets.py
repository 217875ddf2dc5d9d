"""Dagster tier: `clip_scores` (one partition) and `curated_selection` materialize with their checks."""

from __future__ import annotations

import base64
import re

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from assets.curation_assets import ASSETS, CHECKS, metadata_files
from assets.resources import TesseraResource
from curate_testdata import build_ingest

from pipelines.core.partitions_store import PartitionManifest
from pipelines.ingest.partitions import PAIR_PARTITIONS
from pipelines.core.shards import complete_shards
from pipelines.curate.stats import query
from pipelines.stats.png import is_png


def md_png(value) -> bytes:
    """The PNG inside a markdown image metadata value."""
    return base64.b64decode(re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", value.value)[1])


@pytest.mark.slow
def test_assets_materialize_with_passing_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path / "cache"))
    ingest = build_ingest(tmp_path / "data" / "ingest")
    shards = complete_shards(ingest)
    # The partition owns every shard but the last: clip_scores must score only its own shards.
    PAIR_PARTITIONS.save(ingest, PartitionManifest(
        name="meta.parquet", source="coyo", files=["meta.parquet"], input_rows=0, accepted=0, rejected=0,
        start_shard_id=0, n_shards=len(shards) - 1, samples_per_shard=9))
    resource = TesseraResource(out_dir=str(tmp_path / "data"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(metadata_files.name, ["meta.parquet"])
    scores = materialize([ASSETS[0], CHECKS[0]], partition_key="meta.parquet", instance=instance,
                         resources={"tessera": resource})
    assert scores.success
    [check] = scores.get_asset_check_evaluations()
    assert check.passed
    scored = sorted(p.name for p in (tmp_path / "data" / "curate" / "scores").glob("*_stats.json"))
    assert scored == [f"{s.shard_id}_stats.json" for s in shards[:-1]]
    # The other partition is still between image_shards and clip_scores: the selection covers the scored shards.
    early = materialize([ASSETS[1], CHECKS[1]], instance=instance, resources={"tessera": resource},
                        run_config={"ops": {"curated_selection": {"config": {"preset": "coyo"}}}})
    assert early.success
    [inv] = early.get_asset_check_evaluations()
    assert inv.passed and inv.metadata["unscored_shards"].value == 1
    meta = early.asset_materializations_for_node("curated_selection")[0].metadata
    assert (meta["shards"].value, meta["unscored_shards"].value) == (len(shards) - 1, 1)
    PAIR_PARTITIONS.save(ingest, PartitionManifest(
        name="later.parquet", source="coyo", files=["later.parquet"], input_rows=0, accepted=0, rejected=0,
        start_shard_id=len(shards) - 1, n_shards=1, samples_per_shard=9))
    instance.add_dynamic_partitions(metadata_files.name, ["later.parquet"])
    assert materialize([ASSETS[0]], partition_key="later.parquet", instance=instance,
                       resources={"tessera": resource}).success
    run_config = {"ops": {"curated_selection": {"config": {"preset": "coyo", "keep_rate_band": [0.3, 0.9]}}}}
    selection = materialize([ASSETS[1], *CHECKS[1:]], instance=instance, resources={"tessera": resource},
                            run_config=run_config)
    assert selection.success
    checks = {c.check_name: c.passed for c in selection.get_asset_check_evaluations()}
    assert checks == {"check_curated_selection_invariant": True, "check_curated_selection_keep_rate": True}
    assert (tmp_path / "data" / "curate" / "curated" / "00000.parquet").is_file()
    _readable_metadata(selection.asset_materializations_for_node("curated_selection")[0].metadata, tmp_path)

    # The same pool against a band it misses: the check warns (the run still succeeds) and says why.
    run_config["ops"]["curated_selection"]["config"]["keep_rate_band"] = [0.9, 1.0]
    narrow = materialize([ASSETS[1], CHECKS[2]], instance=instance, resources={"tessera": resource},
                         run_config=run_config)
    assert narrow.success
    [warn] = narrow.get_asset_check_evaluations()
    assert not warn.passed and warn.severity == AssetCheckSeverity.WARN
    assert (warn.metadata["band_low"].value, warn.metadata["band_high"].value) == (0.9, 1.0)
    assert "outside the band 90%-100% expected of preset coyo" in warn.description


def _readable_metadata(meta, tmp_path):
    """Preset, model, keep rate against its band, the drop table and the score histogram are on the asset page."""
    assert (meta["preset"].value, meta["clip_model"].value) == ("coyo", "tiny")
    assert meta["keep_rate_band"].value == "0.3-0.9" and meta["keep_rate_in_band"].value is True
    assert meta["keep_rate"].value == pytest.approx(meta["kept"].value / meta["samples"].value)
    assert "clip_threshold" not in meta  # coyo has no CLIP filter
    lines = meta["drop_reasons"].value.splitlines()
    assert lines[:2] == ["| stage | reason | samples |", "|---|---|---|"]
    ledger = query("curate_by_reason", dropped=str(tmp_path / "data" / "curate" / "dropped" / "*.parquet"))
    assert lines[2:] == [f"| {r['stage']} | {r['reason']} | {r['samples']} |" for r in ledger]
    assert "| dedup | duplicate_image | 1 |" in lines
    assert is_png(md_png(meta["clip_score_histogram"]))
