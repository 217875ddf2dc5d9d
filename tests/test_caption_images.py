"""`tessera caption` over ingest shards: curated selection, bad images as statuses, per-shard resume."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
from caption_fixture import make_ingest, tiny_cache, tiny_captioner, tiny_llm  # noqa: F401

from pipelines.cli.main import main
from pipelines.caption.synthetic_captioner import SyntheticCaptioner


def _samples(prefix: str, n: int) -> list[dict]:
    return [{"key": f"{prefix}{i:03d}", "caption": f"photo {i} of a red car"} for i in range(n)]


def test_captioner_stage_marks_bad_images_and_keeps_the_batch(tiny_captioner):  # noqa: F811
    from caption_fixture import jpeg

    stage = SyntheticCaptioner(model=tiny_captioner, num_beams=1, max_new_tokens=5)
    batch = pa.table({"key": ["a", "b", "c"], "image": [jpeg(1), b"not an image", None]})
    out = stage(batch)
    assert "image" not in out.column_names
    assert out.column("captioner_status").to_pylist() == ["ok", "image_error", "image_error"]
    captions = out.column("synthetic_caption").to_pylist()
    assert isinstance(captions[0], str) and captions[1:] == [None, None]
    assert 0 < out.column("captioner_tokens").to_pylist()[0] <= 5


def test_caption_command_curated_resume(tmp_path, tiny_cache, capsys):  # noqa: F811
    shard0 = _samples("k0", 4) + [{"key": "k0bad", "caption": "broken", "image": b"\xff\xd8garbage"},
                                  {"key": "k0fail", "caption": "x", "status": "failed_to_download"}]
    ingest = make_ingest(tmp_path / "ingest", [shard0, _samples("k1", 3)])
    curate = tmp_path / "curate"
    (curate / "curated").mkdir(parents=True)
    # One curated file per ingest shard, as `tessera curate` writes them.
    keep = ["k0000", "k0001", "k0bad", "k1000", "k1002"]
    pq.write_table(pa.table({"key": keep[:3]}), curate / "curated" / "00000.parquet")
    pq.write_table(pa.table({"key": keep[3:]}), curate / "curated" / "00001.parquet")
    out = tmp_path / "out"
    args = ["caption", str(ingest), "--out", str(out), "--curated", str(curate), "--captioner", "tiny",
            "--llm", "tiny", "--caption-num-beams", "1", "--caption-max-new-tokens", "6", "--num-beams", "1",
            "--max-new-tokens", "6", "--fallback", "raw", "--quiet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "synthetic captions: 5 rows in 2 parts" in err and "fused captions: 5 rows in 2 parts" in err
    assert sorted(p.name for p in (out / "captions").glob("*.parquet")) == ["00000.parquet", "00001.parquet"]
    table = pa.concat_tables([pq.read_table(p) for p in sorted((out / "captions").glob("*.parquet"))])
    rows = {r["key"]: r for r in table.to_pylist()}
    assert sorted(rows) == sorted(keep)
    bad = rows["k0bad"]
    assert bad["status"] == "image_error" and bad["caption_source"] == "raw" and bad["final_caption"] == "broken"
    assert bad["fused_caption"] is None and bad["synthetic_caption"] in ("", None)
    good = rows["k0000"]
    assert good["raw_caption"] == "photo 0 of a red car" and good["synthetic_caption"]
    assert good["fused_caption"] is not None and good["caption_source"] in ("fused", "raw")
    assert json.loads(good["models"]) == {"captioner": "tiny-vit-gpt2-v1", "llm": "tiny-llama-v1"}

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "0 rows in 0 parts (2 already done)" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes
