"""kill -9 in the middle of each stage's CLI, rerun the same command: the output equals an uninterrupted run.

Every stage is a real `tessera` subprocess killed (with its workers) as soon as it has begun writing; the rerun must
skip what was finished, redo the rest, remove the crash's leftovers and never write a row twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_fixture import (
    SHARD_IDS, TINY_CAPTION, TINY_CURATE, TINY_TOKENIZE, assert_ingest_equal, ingest_args, kill_when, markers,
    read_parts, reference_ingest, run, staging_dirs, start, success_keys, tmp_files,
)

from pipelines.cli.main import main
from pipelines.core import schema as S
from pipelines.core.shards import complete_shards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory, www, base_url):
    """(metadata, ingest folder) of an uninterrupted ingest, shared by every stage below."""
    return reference_ingest(tmp_path_factory, www, base_url)


def _writing(*folders: Path):
    """True once a marker or a temporary file exists in one of `folders`."""
    def ready() -> bool:
        return any(markers(f) or tmp_files(f) for f in folders if f.is_dir())
    return ready


def test_ingest_killed_while_downloading_and_while_promoting(reference, tmp_path):
    meta, ref_out = reference
    out = tmp_path / "out"
    shard_dir = out / S.SHARDS_DIR

    # Kill 1: img2dataset has finished a shard in its staging folder, nothing is promoted yet.
    def staged_shard() -> bool:
        return any(any(d.glob("*_stats.json")) for d in staging_dirs(out)) if shard_dir.is_dir() else False

    kill_when(start(ingest_args(meta, out)), staged_shard)
    crashed_staging = staging_dirs(out)
    assert len(crashed_staging) == 1 and not complete_shards(out)

    # Kill 2: the rerun is promoting verified shards (first marker written); the old staging folder is gone.
    kill_when(start(ingest_args(meta, out)), lambda: bool(markers(shard_dir)))
    assert not crashed_staging[0].exists()
    finished = {s.shard_id for s in complete_shards(out)}
    assert finished and finished < set(SHARD_IDS), "the kill did not land mid-promotion"
    kept = {name: mtime for name, mtime in markers(shard_dir).items() if name[:5] in finished}

    proc = run(ingest_args(meta, out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_ingest_equal(out, ref_out)
    # Shards finished before the kill were skipped, not rewritten.
    assert {name: mtime for name, mtime in markers(shard_dir).items() if name in kept} == kept


def _killed_then_resumed(args: list[str], folders: list[Path]) -> dict[str, int]:
    """Start `tessera ARGS`, kill it once it writes into `folders`, rerun it; returns the markers finished before."""
    kill_when(start(args), _writing(*folders))
    before = {f"{f.name}/{n}": t for f in folders if f.is_dir() for n, t in markers(f).items()}
    total = len(SHARD_IDS) * len(folders)
    assert len(before) < total, "the kill did not land mid-run"
    proc = run(args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    after = {f"{f.name}/{n}": t for f in folders for n, t in markers(f).items()}
    assert len(after) == total
    assert {k: after[k] for k in before} == before, "a unit finished before the kill was redone"
    for f in folders:
        assert not tmp_files(f.parent), tmp_files(f.parent)
    return before


def test_curate_scoring_killed(reference, tmp_path):
    _, ingest = reference
    args = ["curate", str(ingest), "--out", str(tmp_path / "killed"), *TINY_CURATE]
    assert main(["curate", str(ingest), "--out", str(tmp_path / "clean"), *TINY_CURATE]) == 0
    _killed_then_resumed(args, [tmp_path / "killed" / "scores"])

    scores, clean = read_parts(tmp_path / "killed" / "scores"), read_parts(tmp_path / "clean" / "scores")
    assert set(scores) == set(clean) == success_keys(ingest)
    assert scores == clean  # every score, pHash, size and model per key, bit for bit
    for ledger in ("curated", "dropped"):
        assert read_parts(tmp_path / "killed" / ledger) == read_parts(tmp_path / "clean" / ledger)
    kept, dropped = read_parts(tmp_path / "killed" / "curated"), read_parts(tmp_path / "killed" / "dropped")
    assert sorted([*kept, *dropped]) == sorted(success_keys(ingest))


def test_caption_killed(reference, tmp_path):
    _, ingest = reference
    args = ["caption", str(ingest), "--out", str(tmp_path / "killed"), *TINY_CAPTION]
    assert main(["caption", str(ingest), "--out", str(tmp_path / "clean"), *TINY_CAPTION]) == 0
    _killed_then_resumed(args, [tmp_path / "killed" / "synthetic", tmp_path / "killed" / "captions"])

    for phase in ("synthetic", "captions"):
        got, clean = read_parts(tmp_path / "killed" / phase), read_parts(tmp_path / "clean" / phase)
        assert set(got) == set(clean) == success_keys(ingest)
        assert got == clean, phase  # the same caption strings per key, bit for bit
    synthetic = read_parts(tmp_path / "killed" / "synthetic")
    assert all(r["synthetic_caption"] for r in synthetic.values())


def test_tokenize_killed(reference, tmp_path):
    _, ingest = reference
    args = ["tokenize", str(ingest), "--out", str(tmp_path / "killed"), *TINY_TOKENIZE]
    assert main(["tokenize", str(ingest), "--out", str(tmp_path / "clean"), *TINY_TOKENIZE]) == 0
    _killed_then_resumed(args, [tmp_path / "killed" / "emu3_tokens"])

    tokens, clean = read_parts(tmp_path / "killed" / "emu3_tokens"), read_parts(tmp_path / "clean" / "emu3_tokens")
    dropped = read_parts(tmp_path / "killed" / "emu3_dropped")
    assert tokens == clean  # the same codes, grid and caption per key
    assert dropped == read_parts(tmp_path / "clean" / "emu3_dropped")
    assert sorted([*tokens, *dropped]) == sorted(success_keys(ingest))
    assert all(len(r["codes"]) == r["h"] * r["w"] > 0 for r in tokens.values())
