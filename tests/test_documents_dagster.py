"""Dagster: the document sensor finds MMC4/OBELICS files, the partitioned assets ingest them, the pool assets curate
and sequence them, and the accounting checks pass on real data (and fail when a ledger row goes missing)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from conftest import sensed_partitions, write_parquet
from dagster import instance_for_test, materialize

from assets.document_assets import ASSETS, CHECKS, document_files, document_files_sensor
from assets.resources import TesseraResource
from pipelines.core.accounting import accounting_holds, flat
from pipelines.folders import track_levels

SENTENCES = ["A red house by the river.", "The river runs to the sea.", "Fishing boats wait in the bay."]


def test_document_sensor_assets_and_checks(tmp_path, make_images):
    urls = make_images(3, "dd", size=(200, 160))
    incoming = tmp_path / "incoming"
    (incoming / "mmc4").mkdir(parents=True)
    docs = [{"url": f"http://p/{i}", "text_list": SENTENCES,
             "image_info": [{"raw_url": u, "matched_text_index": j} for j, u in enumerate(urls[i:i + 2])]}
            for i in range(2)]
    (incoming / "mmc4" / "docs_0.jsonl").write_text("\n".join(map(json.dumps, docs)) + "\n[]\n")
    write_parquet(incoming / "obelics" / "ob.parquet", [
        {"images": [urls[2], None], "texts": [None, "A paragraph with enough words in it to pass the filters."],
         "metadata": None, "general_metadata": json.dumps({"url": "http://ob/1"})}])
    tessera = TesseraResource(input_dir=str(incoming), out_dir=str(tmp_path / "tessera"), processes=1, threads=4,
                              image_size=64, samples_per_shard=100, allow_private_network=True)
    resources = {"tessera": tessera}
    with instance_for_test() as instance:
        keys = sensed_partitions(document_files_sensor, document_files, instance, resources)
        assert keys == ["mmc4__docs_0.jsonl", "obelics__ob.parquet"]
        for key in keys:
            assert materialize(ASSETS[:2], instance=instance, resources=resources, partition_key=key).success
        curate_cfg = {"ops": {"curated_documents": {"config": {"min_clip_score": -1.0,
                                                                "docs_per_shard": 10}}},
                      }
        seq_cfg = {"document_sequences": {"config": {"target_area": 4096, "min_area": 4096, "max_area": 16384}}}
        curate_cfg["ops"].update(seq_cfg)
        run = materialize([*ASSETS[2:], *CHECKS], instance=instance, resources=resources,
                          selection=["document_stats", "curated_documents", "document_sequences"],
                          run_config=curate_cfg)
        assert run.success
        checks = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
        assert checks == {"check_document_stats_accounting": True, "check_curated_documents_accounting": True}
        stats = run.asset_materializations_for_node("document_stats")[0].metadata
        assert stats["documents_expected"].value == 4 and stats["images_expected"].value == 5
        assert "| document | rejected | malformed_document | 1 |" in stats["outcomes"].value
        curated = run.asset_materializations_for_node("curated_documents")[0].metadata
        assert curated["kept"].value == 3
        seqs = sorted((tmp_path / "tessera" / "docs_sequences" / "sequences").glob("*.parquet"))
        assert sum(pq.read_metadata(f).num_rows for f in seqs) == 3

        # a ledger that lost a row fails the blocking check
        ledger = tmp_path / "tessera" / "docs_curate" / "doc_ledger.parquet"
        table = pq.read_table(ledger)
        pq.write_table(table.slice(1), ledger)
        again = materialize([*ASSETS[2:], *CHECKS], instance=instance, resources=resources,
                            selection=["curated_documents"], run_config={"ops": {"curated_documents": {
                                "config": {"min_clip_score": -1.0}}}})
        assert again.success  # curation rewrites the ledger from the scores: the check holds again
        pq.write_table(table.slice(1), ledger)
        levels = track_levels("documents", tmp_path / "tessera" / "docs_curate")
        assert not accounting_holds(levels) and flat(levels)["documents_accounted"] == 3
