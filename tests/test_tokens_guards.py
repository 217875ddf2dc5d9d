"""`tessera tokenize` guards: settings pinned per OUT, dropped captions skipped, bad --vq-model, square inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli.main import main
from tokens_fixture import make_ingest, samples

SMALL = ["--target-area", "4096", "--min-area", "1024", "--max-area", "16384"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_dropped_captions_square_warning_and_pinned_settings(tmp_path, capsys):
    ingest = make_ingest(tmp_path / "ingest", [samples("s", 4, width=40, height=40)])
    caps = tmp_path / "captions"
    caps.mkdir()
    pq.write_table(pa.table({"key": ["s0001", "s0002"], "final_caption": [None, "fused"],
                             "caption_source": ["dropped", "fused"]}), caps / "00000.parquet")
    out = tmp_path / "tok"
    args = ["tokenize", str(ingest), "--out", str(out), "--captions", str(caps), *SMALL]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "--resize-mode keep_ratio" in printed and "40x40" in printed
    tokens = pq.read_table(out / "emu3_tokens" / "00000.parquet").to_pylist()
    assert [r["key"] for r in tokens] == ["s0000", "s0002", "s0003"]
    assert tokens[1]["caption"] == "fused"
    ledger = pq.read_table(out / "emu3_dropped" / "00000.parquet").to_pylist()
    assert ledger == [{"key": "s0001", "drop_reason": "caption_dropped"}]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dropped"] == {"caption_dropped": 1} and manifest["tokenized"] == 3
    assert json.loads((out / "tokenizer_config.json").read_text())["target_area"] == 4096

    # Resuming the same OUT with settings that change the codes is refused in one line.
    (out / "emu3_tokens" / "00000_stats.json").unlink()
    assert main([*args[:-6], "--target-area", "8192", *SMALL[2:]]) == 2
    err = capsys.readouterr().err
    assert "target_area=4096" in err and "8192" in err and len(err.strip().splitlines()) == 1
    assert not (out / "emu3_tokens" / "00000_stats.json").exists()
    assert main([*args, "--dtype", "bfloat16"]) == 2
    assert "dtype" in capsys.readouterr().err
    assert main(args) == 0  # same settings resume


def test_no_square_warning_for_mixed_sizes(tmp_path, capsys):
    ingest = make_ingest(tmp_path / "ingest", [samples("a", 2, width=40, height=40) + samples("b", 1)])
    assert main(["tokenize", str(ingest), "--out", str(tmp_path / "tok"), *SMALL]) == 0
    assert "keep_ratio" not in capsys.readouterr().out


def test_vq_model_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys):
    ingest = make_ingest(tmp_path / "ingest", [samples("a", 1)])
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    assert main(["tokenize", str(ingest), "--out", str(tmp_path / "tok"), "--vq-model", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "--vq-model" in err and len(err.strip().splitlines()) == 1


def test_unknown_hub_id_is_one_line_offline(tmp_path):
    ingest = make_ingest(tmp_path / "ingest", [samples("a", 1)])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}  # never reaches the hub
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli.main", "tokenize", str(ingest), "--out",
                           str(tmp_path / "tok"), "--vq-model", "foo/bar"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "--vq-model 'foo/bar'" in proc.stderr and "Traceback" not in proc.stderr
