"""Video ingest (WebVid, Panda-70M): every input row and every clip gets exactly one outcome, clips decode at the
asked rate and size, keys are stable and a rerun writes nothing, the fetch layer's guards apply, the CLI prints one
summary line and one-line errors."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import LOCAL_FETCH, write_parquet
from test_full_disk import resize, small_disk  # noqa: F401 - small_disk is a fixture
from video_fixture import PANDA_HEADER, WEBVID_HEADER, serve_videos

from pipelines.cli.main import main
from pipelines.core.locks import LockHeld, partition_lock
from pipelines.demo.video_sample import write_csv
from pipelines.ingest.fetch import ALLOW_PRIVATE_ENV, FetchConfig
from pipelines.video.download import VideoDownloadConfig
from pipelines.video.ingest import ingest_video, prepare_video
from pipelines.video.partitions import clips_job, video_file
from pipelines.video.media import probe
from pipelines.video.sources import parse_seconds, video_row

CONFIG = VideoDownloadConfig(video_size=64, max_clip_seconds=3.0, threads=4,
                             fetch=LOCAL_FETCH.model_copy(update={"max_image_bytes": 8 * 1024 * 1024}))
SIZE = (86, 64)  # 160x120 sources, short side 64, aspect kept, even sides


@pytest.fixture(scope="module")
def videos(www, base_url) -> dict[str, str]:
    return serve_videos(www, base_url, "vid")


@pytest.fixture
def webvid_csv(tmp_path, videos) -> Path:
    row = lambda i, url, caption="a clip": [str(100 + i), caption, i, f"page_{i}", "PT00H00M03S", url]  # noqa: E731
    return write_csv(tmp_path / "webvid_part.csv", WEBVID_HEADER, [
        row(0, videos["moving.mp4"], "a square crosses a gradient"),
        row(1, videos["truncated.mp4"]),
        row(2, videos["page.mp4"]),
        row(3, videos["missing.mp4"]),
        row(4, videos["youtube"]),
        row(5, ""),
        row(6, "ftp://example.com/v.mp4"),
        row(7, videos["moving.mp4"]),
        row(8, videos["still.mp4"], "a still frame"),
    ])


@pytest.fixture
def panda_csv(tmp_path, videos) -> Path:
    return write_csv(tmp_path / "panda_part.csv", PANDA_HEADER, [
        ["cutA", videos["cut.mp4"],
         "[['0:00:00.000', '0:00:01.000'], ['0:00:00.500', '0:00:02.000'], ['0:00:05.000', '0:00:06.000'], "
         "['0:00:01.800', '0:00:02.000']]",
         "['first scene', 'the cut', 'after the end', 'too short']", "['0.51', '0.47', '0.44', '0.45']"],
        ["bad1", videos["moving.mp4"], "[['0:00:01', oops]]", "['x']", "['0.5']"],
        ["bad2", videos["moving.mp4"], "[['0:00:02.000', '0:00:01.000']]", "['x']", "['0.5']"],
        ["bad3", videos["moving.mp4"], "[['0:00:00.000', '0:00:01.000'], ['0:00:01.000', '0:00:02.000']]",
         "['only one caption']", "['0.5', '0.6']"],
        ["empty", videos["moving.mp4"], "[]", "[]", "[]"],
        ["tail", videos["tail.mp4"], "[['0:00:00.000', '0:00:01.000'], ['0:00:02.000', '0:00:03.000']]",
         "['the head', 'the lost tail']", "['0.6', '0.6']"],
        ["whole", videos["moving.mp4"], "[['0:00:00.000', '0:00:03.050']]", "['past the end by half a frame']",
         "['0.7']"],
        ["yt", videos["youtube"], "[['0:00:01.000', '0:00:02.000']]", "['a watch page']", "['0.6']"],
    ])


def _sidecars(out: Path, kind: str = "") -> list[dict]:
    suffix = f".{kind}.parquet" if kind else ".parquet"
    return [r for p in sorted((out / "clips").glob(f"[0-9]*{suffix}")) if p.name.count(".") == suffix.count(".")
            for r in pq.read_table(p).to_pylist()]


def _rejects(out: Path, name: str) -> dict[int, str]:
    return {r["input_row"]: r["reason"] for r in pq.read_table(video_file(out, name, "rejects")).to_pylist()}


def _tar_members(out: Path) -> dict[str, bytes]:
    members = {}
    for path in sorted((out / "clips").glob("*.tar")):
        with tarfile.open(path) as tar:
            members.update({m.name: tar.extractfile(m).read() for m in tar if m.isfile()})
    return members


def _files(out: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*")
            if p.is_file() and ".locks" not in p.parts}


def test_webvid_every_row_and_clip_has_one_outcome(tmp_path, webvid_csv):
    out = tmp_path / "out"
    manifest, counts = ingest_video("webvid", [webvid_csv], out, config=CONFIG, samples_per_shard=4, progress=False)
    assert (manifest.name, manifest.input_rows, manifest.accepted, manifest.rejected) == ("webvid_part", 9, 6, 3)
    assert manifest.n_shards == 2 and manifest.clips == 6
    assert _rejects(out, "webvid_part") == {5: "missing_url", 6: "invalid_url", 7: "duplicate_url"}
    rows = {r["input_row"]: (r["status"], r["reason"]) for r in _sidecars(out, "rows")}
    assert rows == {0: ("success", None), 1: ("failed", "video_decode_error"), 2: ("failed", "not_a_video"),
                    3: ("failed", "http_error"), 4: ("failed", "not_a_video"), 8: ("success", None)}
    clips = {c["key"]: c for c in _sidecars(out)}
    assert sorted(clips) == ["000000000_000", "000000001_000", "000000002_000", "000000003_000",
                             "000010000_000", "000010001_000"]
    assert {(c["input_row"], c["status"], c["reason"]) for c in clips.values()} == {
        (0, "success", None), (1, "failed", "video_decode_error"), (2, "failed", "not_a_video"),
        (3, "failed", "video_not_downloaded"), (4, "failed", "not_a_video"), (8, "success", None)}
    assert clips["000000003_000"]["error_message"] == "video_not_downloaded: http_error: 404"
    assert counts == {"rejected": {"duplicate_url": 1, "invalid_url": 1, "missing_url": 1},
                      "rows": {"success": 2, "http_error": 1, "not_a_video": 2, "video_decode_error": 1},
                      "clips": {"success": 2, "video_not_downloaded": 1, "not_a_video": 2, "video_decode_error": 1},
                      "unfinished_shards": 0}
    members = _tar_members(out)
    assert sorted(members) == [f"{k}.{e}" for k in ("000000000_000", "000010001_000") for e in ("json", "mp4", "txt")]
    whole = probe(members["000000000_000.mp4"])  # the whole 3 s video at 8 fps
    assert (whole.width, whole.height, whole.fps, whole.frames) == (*SIZE, 8.0, 24)
    assert whole.duration == pytest.approx(3.0, abs=0.01)
    assert members["000000000_000.txt"] == b"a square crosses a gradient"
    meta = json.loads(members["000000000_000.json"])
    assert (meta["video_id"], meta["page_idx"], meta["start"], meta["end"], meta["duration"]) == (
        "100", "0", 0.0, 3.0, 3.0)
    assert (meta["src_duration"], meta["duration_seconds"]) == ("PT00H00M03S", 3.0)  # source column, name clash
    assert meta["video"] == {"duration": 3.0, "width": 160, "height": 120, "fps": 10.0}
    still = json.loads(members["000010001_000.json"])  # 4 s cut to --max-clip-seconds 3
    assert (still["end"], still["cut_from_end"], still["frames"]) == (3.0, 4.0, 24)
    assert probe(members["000010001_000.mp4"]).duration == pytest.approx(3.0, abs=0.01)


def test_panda_clips_at_timestamps(tmp_path, panda_csv):
    out = tmp_path / "out"
    manifest, counts = ingest_video("panda70m", [panda_csv], out, config=CONFIG, samples_per_shard=10,
                                    progress=False)
    assert _rejects(out, manifest.name) == {1: "malformed_timestamps", 2: "malformed_timestamps", 3: "malformed_timestamps",
                       4: "no_clips"}
    assert (manifest.accepted, manifest.clips) == (4, 8)
    rows = {r["input_row"]: (r["status"], r["reason"], r["clips"], r["clips_ok"]) for r in _sidecars(out, "rows")}
    assert rows == {0: ("success", None, 4, 2), 5: ("success", None, 2, 1), 6: ("success", None, 1, 1),
                    7: ("failed", "not_a_video", 1, 0)}
    clips = {(c["input_row"], c["clip"]): (c["key"], c["status"], c["reason"]) for c in _sidecars(out)}
    assert clips == {
        (0, 0): ("000000000_000", "success", None), (0, 1): ("000000000_001", "success", None),
        (0, 2): ("000000000_002", "failed", "clip_out_of_range"), (0, 3): ("000000000_003", "failed", "clip_too_short"),
        (5, 0): ("000000001_000", "success", None), (5, 1): ("000000001_001", "failed", "video_decode_error"),
        (6, 0): ("000000002_000", "success", None), (7, 0): ("000000003_000", "failed", "not_a_video"),
    }
    members = _tar_members(out)
    for key, seconds in (("000000000_000", 1.0), ("000000000_001", 1.5), ("000000001_000", 1.0),
                         ("000000002_000", 3.0)):
        info = probe(members[f"{key}.mp4"])
        assert (info.width, info.height, info.fps) == (*SIZE, 8.0)
        assert info.duration == pytest.approx(seconds, abs=0.01) and info.frames == round(seconds * 8)
    assert members["000000000_001.txt"] == b"the cut"
    meta = json.loads(members["000000000_001.json"])
    assert (meta["video_id"], meta["matching_score"], meta["start"], meta["end"]) == ("cutA", 0.47, 0.5, 2.0)
    assert json.loads(members["000000002_000.json"])["clamped_from_end"] == 3.05
    assert counts["clips"] == {"success": 4, "clip_out_of_range": 1, "clip_too_short": 1, "video_decode_error": 1,
                               "not_a_video": 1}


def test_rerun_writes_nothing_and_a_lost_shard_comes_back_with_the_same_keys(tmp_path, webvid_csv):
    out = tmp_path / "out"
    first = ingest_video("webvid", [webvid_csv], out, config=CONFIG, samples_per_shard=4, progress=False)
    before = _files(out)
    assert ingest_video("webvid", [webvid_csv], out, config=CONFIG, samples_per_shard=4, progress=False) == first
    assert _files(out) == before
    (out / "clips" / "00001_stats.json").unlink()  # as if the run died before the marker
    keys = [c["key"] for c in _sidecars(out)]
    ingest_video("webvid", [webvid_csv], out, config=CONFIG, samples_per_shard=4, progress=False)
    assert [c["key"] for c in _sidecars(out)] == keys
    after = _files(out)
    assert {k for k in after if after[k] != before[k]} <= {f"clips/00001{s}" for s in
                                                          (".tar", ".parquet", ".rows.parquet", "_stats.json")
                                                          } | {"clips/.finished-index.jsonl"}  # its commit line
    assert after["clips/00000.tar"] == before["clips/00000.tar"]
    with pytest.raises(Exception, match="--samples-per-shard 4"):
        ingest_video("webvid", [webvid_csv], out, config=CONFIG, samples_per_shard=5, progress=False)


def test_a_later_partition_counts_earlier_urls_as_duplicates(tmp_path, webvid_csv, videos):
    out = tmp_path / "out"
    ingest_video("webvid", [webvid_csv], out, config=CONFIG, samples_per_shard=4, progress=False)
    later = write_csv(tmp_path / "later.csv", WEBVID_HEADER, [["9", "again", 0, "p", "PT3S", videos["moving.mp4"]],
                                                               ["10", "new", 0, "p", "PT2S", videos["cut.mp4"]]])
    manifest, counts = ingest_video("webvid", [later], out, config=CONFIG, samples_per_shard=4, progress=False)
    assert manifest.start_shard_id == 2 and counts["rejected"] == {"duplicate_url": 1}
    assert [c["key"] for c in pq.read_table(out / "clips" / "00002.parquet").to_pylist()] == ["000020000_000"]


def test_private_addresses_are_refused_without_allow(tmp_path, monkeypatch, videos):
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    meta = write_csv(tmp_path / "w.csv", WEBVID_HEADER, [["1", "x", 0, "p", "PT3S", videos["moving.mp4"]]])
    config = CONFIG.model_copy(update={"fetch": FetchConfig()})
    _, counts = ingest_video("webvid", [meta], tmp_path / "out", config=config, progress=False)
    row = _sidecars(tmp_path / "out", "rows")[0]
    assert row["reason"] == "blocked_private_address" and row["error_message"].startswith("blocked_private_address: ")
    assert counts["clips"] == {"video_not_downloaded": 1}


def test_a_partition_being_written_stops_a_second_run(tmp_path, webvid_csv):
    out = tmp_path / "out"
    with partition_lock(out, "webvid_part", wait=False):
        with pytest.raises(LockHeld, match="partition 'webvid_part'"):
            ingest_video("webvid", [webvid_csv], out, config=CONFIG, progress=False)


def test_panda_row_parsing():
    assert parse_seconds("0:00:16.300") == pytest.approx(16.3) and parse_seconds("1:02:03") == 3723.0
    assert parse_seconds(4.5) == 4.5 and parse_seconds("12.5") == 12.5
    for bad in ("0:61:00", "-1", "nan", True, "__import__('os')"):
        with pytest.raises(ValueError):
            parse_seconds(bad)
    record = {"videoID": "v", "url": "https://x.org/v.mp4", "timestamp": "__import__('os').system('false')",
              "caption": "[]"}
    assert video_row("panda70m", "f", 0, record).reason == "malformed_timestamps"
    ok = video_row("panda70m", "f", 1, {**record, "timestamp": [["0:00:01.000", "0:00:02.500"]],
                                        "caption": ["c"], "desirable_filtering": "['desirable']",
                                        "shot_boundary_detection": "not a list"})
    assert [(c["start"], c["end"], c["caption"]) for c in ok.clips] == [(1.0, 2.5, "c")]
    assert json.loads(ok.clips[0]["extra"]) == {"desirable_filtering": "desirable"}
    assert json.loads(ok.extra) == {"shot_boundary_detection": "not a list"}


def test_cli_summary_line_and_one_line_errors(tmp_path, capsys, panda_csv):
    out = tmp_path / "out"
    args = ["ingest", "--source", "panda70m", "--metadata", str(panda_csv), "--out", str(out),
            "--allow-private-network", "--per-host-rate", "1000", "--video-size", "64", "--max-clip-seconds", "3",
            "--quiet"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ["video partition panda_part (panda70m): 8 rows, 4 rejected (malformed_timestamps 3, "
                     "no_clips 1), 3 downloaded, 1 failed (not_a_video 1); 8 clips: 4 ok, 4 failed "
                     "(clip_out_of_range 1, clip_too_short 1, not_a_video 1, video_decode_error 1)"]
    bad = write_csv(tmp_path / "bad.csv", ["videoid", "name", "link"], [["1", "x", "http://a/b.mp4"]])
    for metadata, needle in ((bad, "has no column 'contentUrl'"), (tmp_path / "none.csv", "not found")):
        assert main(["ingest", "--source", "webvid", "--metadata", str(metadata), "--out", str(tmp_path / "o2")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
    assert main(args[:7] + ["--samples-per-shard", "20000"]) == 2
    assert "between 1 and 10000" in capsys.readouterr().err
    assert main(args[:7] + ["--clip-fps", "0"]) == 2
    assert capsys.readouterr().err.startswith("tessera: error: --clip-fps:")
    assert main(args[:7] + ["--fps", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == ["tessera: warning: --fps is deprecated here, use --clip-fps",
                                                    "tessera: error: --clip-fps: must be over 0 and at most 120 "
                                                    "(got 0)"]


def test_a_full_disk_stops_with_one_line_then_the_rerun_finishes(tmp_path, capsys, webvid_csv, small_disk):
    reference = tmp_path / "reference"
    args = ["ingest", "--source", "webvid", "--metadata", str(webvid_csv), "--allow-private-network",
            "--per-host-rate", "1000", "--video-size", "64", "--samples-per-shard", "2", "--quiet"]
    assert main([*args, "--out", str(reference)]) == 0
    need = sum(-(-p.stat().st_size // 4096) * 4096 for p in reference.rglob("*") if p.is_file())
    disk = small_disk(f"{need // 2048}k")
    out = disk / "out"
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on device" in err[0] and "rerun" in err[0], err
    markers = sorted(p.name[:5] for p in out.glob("clips/*_stats.json"))
    assert sorted(clips_job(out).finished()) == markers and len(markers) < 3  # what is marked finished verifies
    assert not list(out.rglob(".tessera-tmp.*"))
    resize(disk, "4m")
    assert main([*args, "--out", str(out)]) == 0
    outcome = lambda root: [(c["key"], c["status"], c["reason"]) for c in _sidecars(root)]  # noqa: E731
    assert outcome(out) == outcome(reference) and len(outcome(out)) == 6


def test_parquet_input_with_typed_and_list_columns(tmp_path, webvid_csv):
    with open(webvid_csv, newline="") as f:
        rows = [{**r, "videoid": int(r["videoid"]), "page_idx": int(r["page_idx"])} for r in csv.DictReader(f)]
    webvid = prepare_video("webvid", [write_parquet(tmp_path / "w.parquet", rows)], tmp_path / "a")
    from_csv = prepare_video("webvid", [webvid_csv], tmp_path / "b")
    pick = lambda m, root: [(r["video_id"], r["url"], r["clips"]) for r in  # noqa: E731
                            pq.read_table(video_file(root, m.name, "prepared")).to_pylist()]
    assert pick(webvid, tmp_path / "a") == pick(from_csv, tmp_path / "b") and webvid.accepted == 6
    panda = write_parquet(tmp_path / "p.parquet", [{
        "videoID": "v", "url": "https://example.com/v.mp4", "timestamp": [["0:00:00.500", "0:00:02.000"], ["3", "4.5"]],
        "caption": ["one", "two"], "matching_score": [0.5, 0.6]}])
    manifest = prepare_video("panda70m", [panda], tmp_path / "c")
    (row,) = pq.read_table(video_file(tmp_path / "c", manifest.name, "prepared")).to_pylist()
    assert [(c["start"], c["end"], c["caption"], json.loads(c["extra"])) for c in row["clips"]] == [
        (0.5, 2.0, "one", {"matching_score": 0.5}), (3.0, 4.5, "two", {"matching_score": 0.6})]


def test_frames_over_the_pixel_cap_are_not_decoded(tmp_path, videos):
    meta = write_csv(tmp_path / "w.csv", WEBVID_HEADER, [["1", "x", 0, "p", "PT3S", videos["moving.mp4"]]])
    config = CONFIG.model_copy(update={"fetch": CONFIG.fetch.model_copy(update={"max_image_pixels": 160 * 119})})
    _, counts = ingest_video("webvid", [meta], tmp_path / "out", config=config, progress=False)
    row = _sidecars(tmp_path / "out", "rows")[0]
    assert (row["reason"], row["error_message"]) == (
        "image_too_many_pixels", "image_too_many_pixels: frames of 160x120 > 19040 pixels")
    assert counts["clips"] == {"image_too_many_pixels": 1}
