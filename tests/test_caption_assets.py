"""Dagster: `synthetic_captions` then `fused_captions` materialize over a tiny ingest folder; checks run."""

from __future__ import annotations

import base64

import pyarrow as pa
import pyarrow.parquet as pq
from caption_fixture import make_ingest, tiny_cache  # noqa: F401
from conftest import mark_finished
from dagster import AssetKey, DagsterInstance, materialize

from assets.caption_assets import ASSETS, CHECKS
from assets.partitions import metadata_files
from assets.resources import TesseraResource
from pipelines.core.partitions_store import PartitionManifest
from pipelines.ingest.partitions import PAIR_PARTITIONS
from pipelines.stats.png import is_png


def test_caption_assets_materialize_with_checks(tmp_path, tiny_cache):  # noqa: F811
    out = tmp_path / "tessera"
    make_ingest(out / "ingest", [[{"key": f"k{i}", "caption": f"a red car number {i}"} for i in range(4)],
                                 [{"key": "other0", "caption": "a shard of another partition"}]])
    # Partition m.parquet owns shard 00000 only; shard 00001 belongs to another partition and must stay untouched.
    PAIR_PARTITIONS.save(out / "ingest", PartitionManifest(name="m.parquet", source="laion", files=["m.parquet"],
                                                    input_rows=4, accepted=4, rejected=0, start_shard_id=0,
                                                    n_shards=1, samples_per_shard=4))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(metadata_files.name, ["m.parquet"])
    (out / "curate" / "curated").mkdir(parents=True)
    pq.write_table(pa.table({"key": ["k0", "k2", "k3"]}), out / "curate" / "curated" / "00000.parquet")
    # Shard 00001 (the other partition) already has fused captions, all degenerate: the partition's checks and
    # metadata must not count them.
    other = out / "captions" / "captions"
    other.mkdir(parents=True)
    pq.write_table(pa.table({"key": ["other0"], "raw_caption": ["a shard of another partition"],
                             "synthetic_caption": ["x"], "fused_caption": ["x x x x x x x x"], "final_caption": [""],
                             "caption_source": ["raw"], "status": ["repetition"]}), other / "00001.parquet")
    mark_finished(other, "", "00001", ["00001.parquet"], {"rows": 1, "statuses": {"repetition": 1}})
    fast = {"num_beams": 1, "max_new_tokens": 4}
    result = materialize(
        [*ASSETS, *CHECKS],
        resources={"tessera": TesseraResource(out_dir=str(out))},
        run_config={
            "ops": {"synthetic_captions": {"config": fast}, "fused_captions": {"config": fast},
                    "fused_captions_check_fused_captions_degenerate_rate": {"config": {"max_degenerate_rate": 1.0}}},
        },
        selection=[AssetKey("synthetic_captions"), AssetKey("fused_captions")],
        partition_key="m.parquet", instance=instance,
    )
    assert result.success
    meta = result.asset_materializations_for_node("fused_captions")[0].metadata
    assert meta["rows"].value == 3 and meta["llm"].value == "tiny-llama-v1"
    table = pq.read_table(out / "captions" / "captions" / "00000.parquet")
    assert sorted(table.column("key").to_pylist()) == ["k0", "k2", "k3"]
    assert not (out / "captions" / "synthetic" / "00001.parquet").exists()
    # The partition's caption statuses, sources and lengths on the asset pages.
    assert meta["partition_rows"].value == 3 and meta["partition_parts"].value == 1
    assert sum(status_rows(meta["caption_status"].value).values()) == 3  # not 4: shard 00001 is not counted
    assert sum(status_rows(meta["caption_sources"].value).values()) == 3
    lengths = meta["caption_lengths"].value.splitlines()
    assert [line.split(" | ")[0] for line in lengths[2:]] == ["| raw alt-text", "| synthetic caption",
                                                               "| final caption (after fusion)"]
    assert lengths[2] == "| raw alt-text | 3 | 5 | 5 | 5 | 5 |"  # "a red car number N": 5 words each
    png = base64.b64decode(meta["caption_length_plot"].value.split("base64,", 1)[1].rstrip(")"))
    assert is_png(png)
    synthetic = result.asset_materializations_for_node("synthetic_captions")[0].metadata
    assert sum(status_rows(synthetic["caption_status"].value).values()) == synthetic["partition_rows"].value == 3
    # Checks are partitioned like the asset: recorded against m.parquet, counting its shard only.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for check in checks.values():
        assert check.partition == "m.parquet" and check.metadata["partition"].value == "m.parquet"
    assert checks["check_fused_captions_no_empty_final"].passed
    assert checks["check_fused_captions_no_empty_final"].metadata["rows"].value == 3
    assert checks["check_fused_captions_degenerate_rate"].passed
    assert checks["check_fused_captions_degenerate_rate"].metadata["generated"].value == 3


def status_rows(table: str) -> dict[str, int]:
    """`name -> rows` from a `| name | rows | share |` markdown table."""
    return {cells[0]: int(cells[1]) for cells in (
        [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:])}


def test_check_queries_count_degenerate_and_empty(tmp_path):
    from pipelines.caption.jobs import query_captions

    rows = pa.table({
        "key": ["a", "b", "c", "d"],
        "fused_caption": ["fine", "shoes shoes shoes shoes", None, "x"],
        "final_caption": ["fine", "raw text", " ", None],
        "caption_source": ["fused", "raw", "raw", "dropped"],
        "status": ["ok", "repetition", "no_synthetic", "empty"],
    })
    pq.write_table(rows, tmp_path / "00000.parquet")
    pq.write_table(rows, tmp_path / "00001.parquet")  # no stats file: unfinished, must be ignored
    mark_finished(tmp_path, "", "00000", ["00000.parquet"], {})
    assert query_captions(tmp_path, "check_fused_captions_empty_final") == {"rows": 4, "kept": 3, "empty_final": 1}
    r = query_captions(tmp_path, "check_fused_captions_degenerate_rate")
    assert (r["generated"], r["degenerate"], float(r["degenerate_rate"])) == (3, 2, 0.6667)
    assert query_captions(tmp_path / "none", "check_fused_captions_empty_final")["empty_final"] == 0


def test_caption_runner_maps_other_engines_to_local(tmp_path):
    from assets.caption_assets import caption_runner

    def engine(name):
        return caption_runner(TesseraResource(out_dir=str(tmp_path), engine=name)).config.engine

    assert (engine("spark"), engine("local"), engine("ray")) == ("local", "local", "ray")
