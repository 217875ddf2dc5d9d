"""Pre-download accounting: bad and duplicate URLs go to the rejects ledger with a reason, never silently away."""

from __future__ import annotations

import pyarrow.parquet as pq
from conftest import write_parquet

from pipelines.cli.main import main
from pipelines.core import schema as S
from pipelines.core.shards import complete_shards
from pipelines.ingest.metadata_preparer import MetadataPreparer


def _rejects(out, name):
    return pq.read_table(out / S.REJECTS_DIR / f"{name}.parquet").to_pylist()


def test_bad_urls_are_rejected_with_reasons_and_first_duplicate_kept(tmp_path):
    urls = ["http://h/1.jpg", None, "", "   ", "ftp://h/2.jpg", "data:image/png;base64,AA", "HTTPS://H/3.JPG",
            "http://h/1.jpg", "http://h/1.jpg", "http:// h/4.jpg"]
    meta = write_parquet(tmp_path / "m.parquet", [{"URL": u, "TEXT": f"caption {i}"} for i, u in enumerate(urls)])
    out = tmp_path / "out"
    manifest = MetadataPreparer(out, 100).prepare("laion", [meta], "m")
    kept = pq.read_table(out / S.PREPARED_DIR / "m.parquet").to_pylist()
    rejects = {r[S.INPUT_ROW]: r for r in _rejects(out, "m")}
    assert [r[S.INPUT_ROW] for r in kept] == [0, 6]
    assert {i: r[S.REASON] for i, r in rejects.items()} == {
        1: "missing_url", 2: "missing_url", 3: "missing_url", 4: "invalid_url", 5: "invalid_url",
        7: "duplicate_url", 8: "duplicate_url", 9: "invalid_url",
    }
    assert rejects[7][S.DUPLICATE_OF] == f"{meta.resolve()}#0"
    assert rejects[8][S.CAPTION] == "caption 8" and rejects[8][S.URL] == "http://h/1.jpg"
    assert manifest.input_rows == 10 and manifest.accepted == 2 and manifest.rejected == 8


def test_duplicates_across_files_of_one_partition_keep_the_first_file(tmp_path):
    a = write_parquet(tmp_path / "a.parquet", [{"url": "http://h/x.jpg", "text": "from a"}])
    b = write_parquet(tmp_path / "b.parquet", [{"url": "http://h/x.jpg", "text": "from b"},
                                               {"url": "http://h/y.jpg", "text": "y"}])
    out = tmp_path / "out"
    MetadataPreparer(out, 100).prepare("coyo", [a, b], "ab")
    kept = pq.read_table(out / S.PREPARED_DIR / "ab.parquet").to_pylist()
    assert [(r[S.CAPTION]) for r in kept] == ["from a", "y"]
    (rej,) = _rejects(out, "ab")
    assert rej[S.CAPTION] == "from b" and rej[S.REASON] == "duplicate_url"


def test_url_seen_in_an_earlier_partition_is_a_duplicate(tmp_path):
    out = tmp_path / "out"
    first = write_parquet(tmp_path / "p1.parquet", [{"URL": "http://h/x.jpg", "TEXT": "one"}])
    second = write_parquet(tmp_path / "p2.parquet", [{"URL": "http://h/x.jpg", "TEXT": "two"},
                                                     {"URL": "http://h/z.jpg", "TEXT": "three"}])
    m1 = MetadataPreparer(out, 100).prepare("laion", [first], "p1")
    m2 = MetadataPreparer(out, 100).prepare("laion", [second], "p2")
    (rej,) = _rejects(out, "p2")
    assert rej[S.REASON] == "duplicate_url_earlier_partition"
    assert rej[S.DUPLICATE_OF] == f"{first.resolve()}#0"
    assert m2.accepted == 1
    assert m2.start_shard_id == m1.start_shard_id + m1.n_shards  # shard ranges never overlap


def test_prepare_is_idempotent(tmp_path):
    meta = write_parquet(tmp_path / "m.parquet", [{"URL": "http://h/x.jpg", "TEXT": "one"}])
    out = tmp_path / "out"
    first = MetadataPreparer(out, 100).prepare("laion", [meta], "m")
    prepared = out / S.PREPARED_DIR / "m.parquet"
    mtime = prepared.stat().st_mtime_ns
    again = MetadataPreparer(out, 100).prepare("laion", [meta], "m")
    assert again == first and prepared.stat().st_mtime_ns == mtime


LOCAL = ["--allow-private-network", "--per-host-rate", "1000", "--processes", "1", "--threads", "4", "--quiet"]


def test_prepare_only_stops_before_download_and_a_later_run_downloads_what_was_prepared(tmp_path, make_images,
                                                                                         capsys):
    urls = make_images(3, "prep")
    meta = write_parquet(tmp_path / "m.parquet", [{"URL": u, "TEXT": f"t{i}"} for i, u in
                                                  enumerate(urls + [urls[0], "ftp://h/x.jpg", None])])
    out = tmp_path / "out"
    args = ["ingest", "--source", "laion", "--metadata", str(meta), "--out", str(out), "--samples-per-shard", "2"]
    assert main([*args, "--prepare-only"]) == 0
    said = capsys.readouterr().out
    assert "6 rows -> 3 accepted, 3 rejected (duplicate_url 1, invalid_url 1, missing_url 1)" in said
    assert "2 shards planned (00000-00001, 2 rows each)" in said and "without --prepare-only" in said
    assert not (out / S.SHARDS_DIR).exists() and (out / S.PARTITIONS_DIR / "m.json").exists()
    prepared = out / S.PREPARED_DIR / "m.parquet"
    mtime = prepared.stat().st_mtime_ns
    assert main([*args, *LOCAL]) == 0
    assert prepared.stat().st_mtime_ns == mtime  # reused, not prepared again
    shards = complete_shards(out)
    assert len(shards) == 2
    assert sum(len(pq.read_table(s.parquet)) for s in shards) == 3


def test_prepare_only_is_refused_in_one_line_for_tracks_without_a_separate_prepare_step(tmp_path, capsys):
    smiles = tmp_path / "m.smi"
    smiles.write_text("CCO ethanol\n")
    assert main(["ingest", "--source", "molecules", "--metadata", str(smiles), "--out", str(tmp_path / "o"),
                 "--prepare-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--prepare-only" in err and "image-text pair sources only" in err
    assert not (tmp_path / "o").exists()
