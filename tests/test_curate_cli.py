"""End to end: `tessera curate` over a tiny ingest folder; ledger, invariant, resume, stats, user errors."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from curate_testdata import build_ingest
from pipelines.cli.main import main
from pipelines.curate.stats import curate_stats


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_CACHE", str(tmp_path_factory.mktemp("tessera_cache")))
    root = tmp_path_factory.mktemp("curate")
    ingest = build_ingest(root / "ingest")
    out = root / "out"
    args = [str(ingest), "--preset", "coyo", "--out", str(out), "--clip-model", "tiny", "--near-dup-distance", "4",
            "--embeddings", "--batch-size", "4"]
    assert main(["curate", *args]) == 0
    yield ingest, out, args
    mp.undo()


def read_dir(path):
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(p) for p in sorted(path.glob("*.parquet"))], promote_options="default")


def test_outputs_per_shard_and_scores(curated):
    _, out, _ = curated
    for name in ("scores", "curated", "dropped"):
        assert sorted(p.name for p in (out / name).glob("*.parquet")) == ["00000.parquet", "00001.parquet",
                                                                         "00002.parquet"]
    scores = read_dir(out / "scores")
    assert scores.column_names == ["key", "clip_score", "model", "clip_error", "embedding_ref", "phash",
                                   "image_bytes"]
    assert scores.num_rows == 27 and set(scores["model"].to_pylist()) == {"tiny"}
    ref = scores["embedding_ref"][0].as_py()
    assert ref.startswith("embeddings/00000.npy#") and (out / "embeddings" / "00000.npy").is_file()


def test_every_success_is_in_exactly_one_outcome(curated):
    ingest, out, _ = curated
    kept, dropped = read_dir(out / "curated"), read_dir(out / "dropped")
    success = set()
    for shard in ("00000", "00001", "00002"):  # 00003 has no stats file: unfinished, ignored
        side = pq.read_table(ingest / "shards" / f"{shard}.parquet").to_pylist()
        success |= {r["key"] for r in side if r["status"] == "success"}
    keys = kept["key"].to_pylist() + dropped["key"].to_pylist()
    assert sorted(keys) == sorted(success) and len(keys) == 27
    assert dropped.column_names == ["key", "shard", "stage", "reason", "value", "duplicate_of"]


def test_each_dropped_sample_has_its_first_reason(curated):
    _, out, _ = curated
    by_key = {r["key"]: r for r in read_dir(out / "dropped").to_pylist()}
    reasons = {r["reason"] for r in by_key.values()}
    assert reasons == {"image_undecodable", "duplicate_url", "image_too_small", "aspect_ratio_too_large",
                       "caption_too_few_words", "nsfw_score_opennsfw2_above_max", "caption_language",
                       "duplicate_image", "near_duplicate_image", "image_file_too_small",
                       "nsfw_score_gantman_above_max"}
    dup = next(r for r in by_key.values() if r["reason"] == "duplicate_image")
    assert dup["duplicate_of"] == "000000000" and dup["stage"] == "dedup"
    near = next(r for r in by_key.values() if r["reason"] == "near_duplicate_image")
    assert near["duplicate_of"] == "000000001" and near["value"] <= 4
    assert by_key["000020006"]["reason"] == "duplicate_url" and by_key["000020006"]["duplicate_of"] == "000000003"


def test_image_bytes_is_the_stored_file_size(curated):
    import tarfile

    ingest, out, _ = curated
    with tarfile.open(ingest / "shards" / "00002.tar") as tar:
        sizes = {m.name[:-4]: m.size for m in tar if m.name.endswith(".jpg")}
    scores = {r["key"]: r["image_bytes"] for r in pq.read_table(out / "scores" / "00002.parquet").to_pylist()}
    assert scores == sizes
    small = next(r for r in read_dir(out / "dropped").to_pylist() if r["reason"] == "image_file_too_small")
    assert small["stage"] == "image_file_size" and small["value"] == sizes[small["key"]] < 5 * 1024


def test_curate_stats_and_invariant(curated):
    _, out, _ = curated
    stats = curate_stats(out)
    assert (stats["kept"], stats["dropped"]) == (16, 11)
    assert stats["invariant"]["ok"] and stats["invariant"]["success"] == 27
    assert stats["invariant"]["unscored_shards"] == 0 and stats["unscored_shards"] == []
    assert stats["scores"]["nan_scores"] == 0 and stats["scores"]["out_of_range"] == 0
    assert stats["scores"]["scored"] == 26  # the corrupt image has a null score
    assert sum(r["samples"] for r in stats["dropped_by_reason"]) == 11
    assert stats["preset"] == "coyo" and stats["model"] == "tiny"


def test_rerun_resumes_without_rescoring_or_duplicates(curated, capsys):
    _, out, args = curated
    markers = {p: p.stat().st_mtime_ns for p in (out / "scores").glob("*_stats.json")}
    (out / "scores" / "00001_stats.json").unlink()  # as if interrupted while scoring shard 00001
    assert main(["curate", *args]) == 0
    printed = capsys.readouterr()
    assert "1 scored now" in printed.out
    assert "warning" not in printed.err  # coyo keeps 16 of 27, inside its band
    for path, mtime in markers.items():
        if path.name != "00001_stats.json":
            assert path.stat().st_mtime_ns == mtime
    assert read_dir(out / "curated").num_rows + read_dir(out / "dropped").num_rows == 27
    assert json.loads((out / "curate_stats.json").read_text())["kept"] == 16


def test_keep_rate_outside_the_band_warns_in_one_line(curated, tmp_path, capsys):
    ingest, _, _ = curated
    assert main(["curate", str(ingest), "--preset", "laion2b", "--out", str(tmp_path / "o"), "--clip-model", "tiny",
                 "--min-clip-score", "0.99"]) == 0  # a warning, not a failure
    printed = capsys.readouterr()
    assert "kept           0  (0.0%)" in printed.out
    warnings = [line for line in printed.err.splitlines() if "warning" in line]
    assert warnings == ["tessera: warning: keep rate 0.0% is outside the band 5%-98% expected of preset laion2b; "
                        "check the CLIP model, thresholds and input (docs/curate.md, keep-rate bands)"]
    summary = json.loads((tmp_path / "o" / "curate_stats.json").read_text())
    assert summary["clip_threshold"] == 0.99 and summary["keep_rate_band"] == [0.05, 0.98]


def test_user_errors_are_one_line(curated, tmp_path, capsys):
    ingest, out, args = curated
    assert main(["curate", str(ingest), "--preset", "coyo", "--out", str(tmp_path / "o"),
                 "--clip-model", "ViT-Q-99"]) == 2
    assert "unknown CLIP model" in capsys.readouterr().err
    assert main(["curate", str(ingest), "--preset", "coyo", "--out", str(out), "--clip-model", "ViT-B-32:random"]) == 2
    assert "holds scores from CLIP model 'tiny'" in capsys.readouterr().err
    assert main(["curate", str(tmp_path / "nope"), "--preset", "coyo", "--out", str(out)]) == 2


@pytest.mark.parametrize("option, message", [
    ("--max-meta=source=0.5", "--max-meta source=0.5: column 'source' is string, not numeric"),
    ("--min-meta=NSFW=0.5", "--min-meta NSFW=0.5: no column 'NSFW' in the shard metadata or scores"),
])
def test_metadata_rule_on_bad_column_is_one_line_before_scoring(curated, tmp_path, capsys, option, message):
    ingest, _, _ = curated
    fresh = tmp_path / "o"
    assert main(["curate", str(ingest), "--preset", "coyo", "--out", str(fresh), "--clip-model", "tiny",
                 option]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (fresh / "scores").exists()  # checked up front, nothing scored
