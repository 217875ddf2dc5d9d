"""open_clip's own trainer sizes a `::` mix of two exports from sizes.json alone, in either order.

open_clip reads `sizes.json` beside the FIRST pattern's tars and looks every tar of the mix up there by base name.
Before export ids, both exports named their tars from 00000.tar: A::B below failed with KeyError '00003.tar' and
B::A counted 35 samples (B's sizes for A's names) instead of 32.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.export.eva_clip import export_eva_clip
from pipelines.export.folder import brace_pattern
from pipelines.train.eva_clip import open_clip_args
from tokens_fixture import make_ingest, samples

ROOT = Path(__file__).resolve().parent.parent
_STEP = re.compile(r"Train Epoch: 0 \[\s*(\d+)/(\d+) ")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _train(spec: str, out: Path, logs: Path, name: str) -> list[tuple[int, int]]:
    """Run open_clip_train.main (with Tessera's tiny model configs registered) on `spec`, no sample count given."""
    args = open_clip_args(out, logs, batch_size=4, name=name)
    args[args.index("--train-data") + 1] = spec
    assert "--train-num-samples" not in args
    proc = subprocess.run([sys.executable, "-m", "pipelines.train.eva_clip", *args], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ), timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["steps"] == 8 and summary["last_loss"] is not None
    return [(int(seen), int(total)) for seen, total in _STEP.findall((logs / name / "out.log").read_text())]


def test_open_clip_sizes_a_mix_of_two_exports_in_either_order(tmp_path):
    out = tmp_path / "eva"
    a = export_eva_clip([make_ingest(tmp_path / "a", [samples("a", 12)])], out, samples_per_shard=4,
                        log=lambda *_: None)
    b = export_eva_clip([make_ingest(tmp_path / "b", [samples("b", 20, "coyo")])], out, samples_per_shard=5,
                        log=lambda *_: None)
    assert (a["shards"], b["shards"]) == (3, 4) and a["id"] != b["id"]
    pa, pb = brace_pattern(out, a["id"], 3), brace_pattern(out, b["id"], 4)
    for name, spec in (("ab", f"{pa}::{pb}"), ("ba", f"{pb}::{pa}")):
        steps = _train(spec, out, tmp_path / "logs", name)
        # 8 batches of 4: open_clip counted 12 + 20 samples for the epoch and went through all of them.
        assert steps and {total for _, total in steps} == {32} and steps[-1][0] == 32, (name, steps)
