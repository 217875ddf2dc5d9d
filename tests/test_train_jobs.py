"""Both training jobs run through `tessera train` and their loss goes down on a tiny repeated batch."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.cli.main import main
from pipelines.export.eva_clip import export_eva_clip
from pipelines.core.shard_io import write_parquet_atomic
from tokens_fixture import make_ingest, samples


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _summary(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def test_emu3_job_loss_goes_down(tmp_path, capfd):
    rng = random.Random(0)
    rows = [{"key": str(i), "caption": "a photo of a cat", "h": 4, "w": 4,
             "codes": [rng.randrange(32768) for _ in range(16)], "tokenizer": "emu3_vq:tiny"} for i in range(2)]
    write_parquet_atomic(pa.Table.from_pylist(rows), tmp_path / "tok" / "emu3_tokens" / "00000.parquet")
    assert main(["train", "emu3", str(tmp_path / "tok"), "--out", str(tmp_path / "run"), "--steps", "8",
                 "--lr", "1e-2", "--no-shuffle"]) == 0
    m = _summary(capfd.readouterr().out)
    assert m["steps"] == 8 and m["first_loss"] > 11  # ~ln(184622): the full Emu3 vocabulary
    assert m["last_loss"] < m["first_loss"] - 1.0 and m["tokens_per_s"] > 0
    assert (tmp_path / "run" / "checkpoint" / "config.json").exists()


def test_emu3_job_reports_missing_tokens(tmp_path, capfd):
    (tmp_path / "empty").mkdir()
    assert main(["train", "emu3", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 2
    assert "tessera tokenize" in capfd.readouterr().err


def test_emu3_job_fails_when_packing_leaves_no_sample(tmp_path):
    rows = [{"key": "0", "caption": "a cat", "h": 4, "w": 4, "codes": list(range(16)), "tokenizer": "emu3_vq:tiny"}]
    write_parquet_atomic(pa.Table.from_pylist(rows), tmp_path / "tok" / "emu3_tokens" / "00000.parquet")
    proc = subprocess.run([sys.executable, "-m", "pipelines.train.emu3", str(tmp_path / "tok"), "--out",
                           str(tmp_path / "run"), "--pack-to", "5", "--steps", "2"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, env=dict(os.environ), timeout=180)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--pack-to 5" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_eva_clip_job_with_open_clip_trainer_loss_goes_down(tmp_path, capfd):
    ingest = make_ingest(tmp_path / "ingest", [samples("l", 8)])
    export_eva_clip([ingest], tmp_path / "eva", samples_per_shard=8, log=lambda *_: None)
    assert main(["train", "eva-clip", str(tmp_path / "eva"), "--out", str(tmp_path / "logs"), "--epochs", "8",
                 "--name", "t"]) == 0
    m = _summary(capfd.readouterr().out)
    assert m["steps"] == 8 and m["last_loss"] < 0.7 * m["first_loss"] and m["samples_per_s"] > 0
    assert (tmp_path / "logs" / "t" / "checkpoints" / "epoch_8.pt").exists()
