"""`tessera fuse` over CapsFusion-style metadata: dry-run prompts, end-to-end tiny fusion, resume, user errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from caption_fixture import make_capsfusion, tiny_cache, tiny_llm  # noqa: F401

from models.caption_fuser import build_prompt
from pipelines.cli.main import main

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
        # the re-committed part appends its line to the finished-unit index; nothing else is rewritten
        if "00002" not in p.name and p.name not in ("manifest.json", ".finished-index.jsonl"):
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


def test_dry_run_prompts_are_the_prompts_the_stage_sends(tmp_path, tiny_llm, capsys):  # noqa: F811
    from models.caption_fuser import count_tokens
    from pipelines.caption.caption_fuser import CaptionFuser
    from pipelines.caption.parts import metadata_parts

    raw = "  Vintage  poster:\n\n  LONDON   1920 \t railway\r\n"
    rows = {"laion_2b": [raw, "no synthetic here", "blank synthetic", "dog  photo"],
            "laion_coco": [" a  poster\nof a train ", None, " \n\t ", "a dog"]}
    path = tmp_path / "ws.parquet"
    pq.write_table(pa.table(rows), path)
    assert main(["fuse", "--input", str(path), "--dry-run"]) == 0
    dry = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["key"] for d in dry] == ["ws-000000000", "ws-000000003"]  # rows the real run skips are not shown
    # Only stripped: inner newlines, tabs and double spaces reach the model as they are.
    assert "Sentence 1: Vintage  poster:\n\n  LONDON   1920 \t railway\nSentence 2: a  poster\nof a train\nNew" in (
        dry[0]["prompt"])

    stage = CaptionFuser(model=tiny_llm, num_beams=1, max_new_tokens=4)
    stage.setup()
    sent, generate = [], stage.fuser.generate
    stage.fuser.generate = lambda prompts: (sent.extend(prompts), generate(prompts))[1]  # record what is sent
    table, _ = metadata_parts([path], 100)[0].load()
    result = stage.process(table)
    assert sent == [d["prompt"] for d in dry]
    assert result.column("fuser_status").to_pylist()[1:3] == ["no_synthetic", "no_synthetic"]
    assert result.column("prompt_tokens").to_pylist()[0] == count_tokens(stage.fuser.tokenizer, dry[0]["prompt"])

    out = tmp_path / "out"
    assert main(["fuse", "--input", str(path), "--out", str(out)] + FAST) == 0
    ledger = pq.read_table(out / "captions" / "ws-00000.parquet")
    assert ledger.column("raw_caption").to_pylist() == rows["laion_2b"]  # byte for byte
    assert ledger.column("synthetic_caption").to_pylist() == rows["laion_coco"]
    assert ledger.column("prompt_tokens").to_pylist() == result.column("prompt_tokens").to_pylist()
    assert ledger.column("final_caption").to_pylist()[1] == "no synthetic here"


def test_fuse_refuses_another_input_with_a_known_stem(tmp_path, tiny_cache, capsys):  # noqa: F811
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_capsfusion(tmp_path / "a" / "part.parquet", 2)
    out = tmp_path / "out"
    manifest_path = out / "captions" / "manifest.json"
    assert main(["fuse", "--out", str(out), "--input", str(first)] + FAST) == 0
    manifest = json.loads(manifest_path.read_text())
    assert manifest["rows_per_part"] == 10_000
    assert manifest["inputs"]["part"]["path"] == str(first.resolve())
    assert manifest["inputs"]["part"]["size"] == first.stat().st_size
    capsys.readouterr()

    other = make_capsfusion(tmp_path / "b" / "part.parquet", 3, offset=10)  # same stem, other rows
    assert main(["fuse", "--out", str(out), "--input", str(other)] + FAST) == 2
    err = capsys.readouterr().err.strip()
    assert "another file" in err and str(first.resolve()) in err and len(err.splitlines()) == 1
    assert json.loads(manifest_path.read_text()) == manifest  # the manifest keeps the first input

    extra = make_capsfusion(tmp_path / "extra.parquet", 1)  # a new stem joins the folder
    assert main(["fuse", "--out", str(out), "--input", str(first), str(extra)] + FAST) == 0
    assert set(json.loads(manifest_path.read_text())["inputs"]) == {"part", "extra"}
    capsys.readouterr()

    make_capsfusion(first, 3, offset=20)  # the same path, rewritten
    assert main(["fuse", "--out", str(out), "--input", str(first)] + FAST) == 2
    assert "changed since" in capsys.readouterr().err
    assert pq.read_table(out / "captions" / "part-00000.parquet").num_rows == 2


def test_backend_defaults_to_auto_and_vllm_errors_are_one_line(tmp_path, tiny_cache, capsys):  # noqa: F811
    from models.generation import vllm_installed
    from pipelines.cli.main import build_parser

    meta = make_capsfusion(tmp_path / "m.parquet", 1)
    parser = build_parser()
    assert parser.parse_args(["fuse", "--input", str(meta)]).backend == "auto"
    assert parser.parse_args(["caption", str(tmp_path), "--out", str(tmp_path)]).backend == "auto"
    # The vLLM captioner needs the model's own prompt template: refused before anything loads.
    assert main(["caption", str(tmp_path), "--out", str(tmp_path / "o"), "--backend", "vllm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--caption-prompt" in err and len(err.splitlines()) == 1
    if not vllm_installed():
        assert main(["fuse", "--input", str(meta), "--out", str(tmp_path / "o"), "--backend", "vllm"]) == 2
        assert "needs vLLM" in capsys.readouterr().err


def test_claim_upgrades_a_manifest_that_listed_paths_only(tmp_path):
    from pipelines.caption.parts import claim_metadata_inputs
    from pipelines.core.errors import TesseraUserError

    first = make_capsfusion(tmp_path / "m.parquet", 1)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "manifest.json").write_text(json.dumps({"rows_per_part": 5, "inputs": [str(first)]}))
    claim_metadata_inputs(tmp_path / "o", 5, [first])
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["inputs"]["m"] == {"path": str(first.resolve())}
    (tmp_path / "x").mkdir()
    with pytest.raises(TesseraUserError, match="another file"):
        claim_metadata_inputs(tmp_path / "o", 5, [make_capsfusion(tmp_path / "x" / "m.parquet", 1)])
