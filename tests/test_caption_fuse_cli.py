"""`tessera fuse` over CapsFusion-style metadata: dry-run prompts, end-to-end tiny fusion, resume, user errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from caption_fixture import make_capsfusion, tiny_cache, tiny_llm  # noqa: F401

from models.caption_fuser import build_prompt
from pipelines.cli import main

OUTPUT_COLUMNS = ["key", "raw_caption", "synthetic_caption", "fused_caption", "final_caption", "caption_source",
                  "models", "status"]
FAST = ["--num-beams", "1", "--max-new-tokens", "8", "--quiet"]


@pytest.fixture()
def meta(tmp_path, tiny_cache):  # noqa: F811
    return make_capsfusion(tmp_path / "capsfusion_part0.parquet", 7)


def test_dry_run_prints_prompts_and_generates_nothing(meta, tmp_path, capsys):
    assert main(["fuse", "--input", str(meta), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    rows = [json.loads(line) for line in lines]
    assert set(rows[0]) == {"key", "prompt"}
    assert rows[0]["key"] == "capsfusion-part0-000000000"
    assert rows[2]["prompt"] == build_prompt("IMG_0042.JPG", "a cat sitting on a table")
    assert not (tmp_path / "out").exists()


def test_fuse_end_to_end_writes_ledger_and_resumes(meta, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["fuse", "--input", str(meta), "--out", str(out), "--llm", "tiny", "--rows-per-part", "3",
            "--fallback", "synthetic"]
    assert main(args + FAST) == 0
    parts = sorted((out / "captions").glob("*.parquet"))
    assert [p.name for p in parts] == [f"capsfusion-part0-{i:05d}.parquet" for i in range(3)]
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    assert table.column_names[:8] == OUTPUT_COLUMNS
    assert table.num_rows == 7 and len(set(table.column("key").to_pylist())) == 7
    for row in table.to_pylist():
        assert json.loads(row["models"]) == {"captioner": "input:laion_coco", "llm": "tiny-llama-v1"}
        assert row["fused_caption"] is not None and 0 < row["generated_tokens"] <= 8
        if row["status"] == "ok":
            assert row["caption_source"] == "fused" and row["final_caption"] == row["fused_caption"]
        else:
            assert row["caption_source"] == "synthetic" and row["final_caption"] == row["synthetic_caption"]
    stats = json.loads((out / "captions" / "capsfusion-part0-00000_stats.json").read_text())
    assert stats["rows"] == 3 and sum(stats["statuses"].values()) == 3
    assert "fused captions: 7 rows in 3 parts" in capsys.readouterr().err

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "captions").iterdir()}
    (out / "captions" / "capsfusion-part0-00002_stats.json").unlink()  # an interrupted last part
    assert main(args + FAST) == 0
    assert "1 rows in 1 parts (2 already done)" in capsys.readouterr().err
    for p, t in mtimes.items():
        if "00002" not in p.name and p.name != "manifest.json":
            assert p.stat().st_mtime_ns == t
    again = pa.concat_tables([pq.read_table(p) for p in sorted((out / "captions").glob("*.parquet"))])
    assert sorted(again.column("key").to_pylist()) == sorted(table.column("key").to_pylist())

    assert main(args + FAST) == 0
    assert "0 rows in 0 parts (3 already done)" in capsys.readouterr().err
    assert main(args[:-4] + ["--rows-per-part", "5"] + FAST) == 2  # other slicing would mix up part ids


def test_reference_defaults_generate_up_to_80_tokens(tmp_path, tiny_cache):  # noqa: F811
    meta = make_capsfusion(tmp_path / "m.parquet", 1)
    assert main(["fuse", "--input", str(meta), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    table = pq.read_table(tmp_path / "o" / "captions" / "m-00000.parquet")
    assert max(table.column("generated_tokens").to_pylist()) <= 80
    assert all(p <= 256 for p in table.column("prompt_tokens").to_pylist())


def test_user_errors_are_one_line(tmp_path, capsys, tiny_cache):  # noqa: F811
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"laion_2b": ["x"]}), bad)
    assert main(["fuse", "--input", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "has no column 'laion_coco'" in capsys.readouterr().err
    assert main(["fuse", "--input", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    meta = make_capsfusion(tmp_path / "m.parquet", 1)
    assert main(["fuse", "--input", str(meta), "--out", str(tmp_path / "o"), "--llm", str(tmp_path / "nope")]) == 2
    assert "--llm" in capsys.readouterr().err
