"""The one accounting (sql/accounting.sql, pipelines.core.accounting) over every track's levels: each folder holds as
ingested, and each level breaks when a file is tampered with on purpose (a duplicated row, a lost row, a duplicate
key; the shard marker resealed so the tampered file still reads as finished). The one predicate and the CLI
summaries (`tessera stats` tables and JSON; the end-of-ingest line for pairs) then say BROKEN."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FAST_DOWNLOAD, jpeg_bytes
from test_molecules import write_inputs

from pipelines.cli.main import main
from pipelines.core.accounting import accounting_holds
from pipelines.folders import folder_accounting
from pipelines.demo.video_sample import build_video_sample
from pipelines.documents.ingest import ingest_documents
from pipelines.molecules.ingest import ingest_molecules

LOCAL = ["--allow-private-network", "--per-host-rate", "1000", "--per-host-connections", "16", "--quiet"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, demo_ingest, www, base_url) -> dict[str, Path]:
    """One small ingest folder per track: the demo pairs, MMC4 documents, WebVid clips, molecules."""
    root = tmp_path_factory.mktemp("accounting")
    for name in ("acc_a", "acc_b", "acc_c"):
        (www / "img" / f"{name}.jpg").write_bytes(jpeg_bytes(240, 180, color="olive"))
    urls = [f"{base_url}/img/acc_{x}.jpg" for x in "abc"]
    docs = [{"url": "http://p/1", "text_list": ["One.", "Two."],
             "image_info": [{"raw_url": urls[0], "matched_text_index": 0}, {"raw_url": urls[1]}]},
            {"url": "http://p/2", "text_list": ["Three."], "image_info": [{"raw_url": urls[2]}]}]
    (root / "docs.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    ingest_documents("mmc4", [root / "docs.jsonl"], root / "documents", download=FAST_DOWNLOAD, progress=False)
    files = build_video_sample(root / "vsample", www / "acc_vsample", f"{base_url}/acc_vsample")
    assert main(["ingest", "--source", "webvid", "--metadata", str(files["webvid"]), "--out", str(root / "video"),
                 "--timeout", "5", *LOCAL]) == 0
    table, _, _ = write_inputs(root / "mol_in")
    ingest_molecules([table], root / "molecules", embed_3d=False, max_atoms=20, molecules_per_shard=5,
                     progress=False)
    return {"pairs": demo_ingest[1], "documents": root / "documents", "video": root / "video",
            "molecules": root / "molecules"}


def _dup_row(t: pa.Table) -> pa.Table:
    return pa.concat_tables([t, t.slice(0, 1)])


def _drop_row(t: pa.Table) -> pa.Table:
    return t.slice(1)


def _dup_key(column: str, among: tuple[str, str] | None = None):
    """The second row (of those whose column among[0] is among[1]) takes the first one's `column` value."""
    def dup(t: pa.Table) -> pa.Table:
        values = t.column(column).to_pylist()
        rows = [i for i, v in enumerate(t.column(among[0]).to_pylist()) if v == among[1]] if among else [0, 1]
        values[rows[1]] = values[rows[0]]
        return t.set_column(t.schema.get_field_index(column), column, pa.array(values, t.schema.field(column).type))
    return dup


def _tamper(root: Path, pattern: str, change) -> None:
    """Rewrite the first file matching `pattern` with `change(table)`; reseal any shard marker that records it."""
    path = sorted(root.glob(pattern))[0]
    table = change(pq.read_table(path))
    pq.write_table(table, path)
    rel = path.relative_to(root).as_posix()
    for marker in root.rglob("*_stats.json"):
        m = json.loads(marker.read_text())
        if rel in m.get("tessera_files", {}):
            m["tessera_files"][rel] = path.stat().st_size
            m.get("tessera_counts", {})[rel] = table.num_rows
            marker.write_text(json.dumps(m))


CASES = [  # track, file, change, the level and field that must count it
    ("pairs", "shards/00000.parquet", _dup_row, "rows", "duplicated"),
    ("pairs", "rejects/*.parquet", _drop_row, "rows", "missing"),
    ("pairs", "shards/00000.parquet", _dup_key("key"), "rows", "duplicate_keys"),
    ("documents", "documents/*.doc_outcomes.parquet", _dup_row, "documents", "duplicated"),
    ("documents", "documents/*.doc_outcomes.parquet", _drop_row, "documents", "missing"),
    ("documents", "documents/*.doc_outcomes.parquet", _dup_key("doc_id"), "documents", "duplicate_keys"),
    ("documents", "documents/*.image_outcomes.parquet", _dup_row, "images", "duplicated"),
    ("documents", "documents/*.image_outcomes.parquet", _drop_row, "images", "missing"),
    ("video", "video/*.rejects.parquet", _dup_row, "rows", "duplicated"),
    ("video", "clips/00000.rows.parquet", _drop_row, "rows", "missing"),
    ("video", "clips/00000.parquet", _dup_key("key"), "clips", "duplicate_keys"),
    ("video", "clips/00000.parquet", _drop_row, "clips", "missing"),
    ("molecules", "molecules/00000.ledger.parquet", _dup_row, "records", "duplicated"),
    ("molecules", "molecules/00000.ledger.parquet", _drop_row, "records", "missing"),
    ("molecules", "molecules/00000.ledger.parquet", _dup_key("key", ("status", "kept")), "records", "duplicate_keys"),
    ("molecules", "molecules/00000.parquet", _dup_row, "shard_rows", "duplicated"),
    ("molecules", "molecules/00000.parquet", _drop_row, "shard_rows", "missing"),
]


def test_every_track_holds_as_ingested(folders, capsys):
    levels = {t: {r["level"] for r in folder_accounting(out) if r["track"] == t} for t, out in folders.items()}
    assert levels == {"pairs": {"rows"}, "documents": {"documents", "images"}, "video": {"rows", "clips"},
                      "molecules": {"records", "shard_rows"}}
    for out in folders.values():
        assert accounting_holds(folder_accounting(out))
        assert main(["stats", str(out)]) == 0
        assert "accounting holds." in capsys.readouterr().out


@pytest.mark.parametrize("track, pattern, change, level, field", CASES,
                         ids=[f"{c[0]}-{c[3]}-{c[4]}" for c in CASES])
def test_a_broken_level_is_reported_broken(folders, tmp_path, capsys, track, pattern, change, level, field):
    out = tmp_path / track
    shutil.copytree(folders[track], out)
    _tamper(out, pattern, change)
    rows = folder_accounting(out)
    (row,) = [r for r in rows if r["track"] == track and r["level"] == level]
    assert row[field] >= 1 and not accounting_holds(rows)
    assert main(["stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["accounting"]["holds"] is False and row in stats["accounting"]["levels"]
    assert main(["stats", str(out)]) == 0
    assert f"accounting BROKEN ({track} {level}: " in capsys.readouterr().out.replace("\n", " ")


def test_the_end_of_ingest_summary_says_broken(demo_ingest, tmp_path, capsys):
    meta, ingested = demo_ingest
    out = tmp_path / "pairs"
    shutil.copytree(ingested, out)
    _tamper(out, "shards/00000.parquet", _dup_key("key"))
    assert main(["ingest", "--source", "laion", "--metadata", str(meta), "--out", str(out), "--samples-per-shard",
                 "40", *LOCAL]) == 0
    line = capsys.readouterr().out.replace("\n", " ")
    assert "accounting BROKEN (pairs rows: 1 duplicate_keys)." in line


@pytest.mark.parametrize("change, field", [(_drop_row, "missing"), (_dup_row, "duplicated")])
def test_a_document_curation_whose_curated_keys_disagree_is_broken(folders, tmp_path, capsys, change, field):
    out = tmp_path / "cur"
    assert main(["curate", str(folders["documents"]), "--preset", "mmc4", "--out", str(out), "--clip-model", "tiny",
                 "--min-clip-score", "-1"]) == 0
    assert accounting_holds(folder_accounting(out))
    _tamper(out, "curated/document_images.parquet", change)
    rows = folder_accounting(out)
    (row,) = [r for r in rows if r["level"] == "curated_images"]
    assert row[field] == 1 and not accounting_holds(rows)
    capsys.readouterr()
    assert main(["stats", str(out)]) == 0
    assert "accounting BROKEN (documents curated_images: " in capsys.readouterr().out.replace("\n", " ")
