"""The demo's video sample through `tessera ingest` (WebVid and Panda-70M into one folder), then `tessera stats`:
every row and clip outcome as designed, and the accounting invariant holds; a tampered shard is left out, named."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pipelines.cli.main import main
from pipelines.demo.video_sample import build_video_sample
from pipelines.core.accounting import accounting_holds, flat
from pipelines.folders import track_levels
from pipelines.video.stats import video_stats

LOCAL = ["--allow-private-network", "--per-host-rate", "1000", "--per-host-connections", "16", "--quiet"]


def test_demo_video_sample_outcomes_and_accounting(tmp_path, www, base_url, capsys):
    files = build_video_sample(tmp_path / "sample", www / "vsample", f"{base_url}/vsample")
    out = tmp_path / "ingest"
    for source in ("webvid", "panda70m"):
        assert main(["ingest", "--source", source, "--metadata", str(files[source]), "--out", str(out),
                     "--timeout", "5", *LOCAL]) == 0
    capsys.readouterr()
    assert main(["stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    video = stats["video"]
    acc = video["video_accounting"]
    assert stats["accounting"]["holds"] and acc["rows_expected"] == 16 and video["video_partitions_unfinished"] == ""
    by = {(r["what"], r["outcome"], r["reason"]): r["n"] for r in video["video_outcomes"]}
    assert by[("row", "rejected", "duplicate_url")] == 1 and by[("row", "rejected", "missing_url")] == 1
    assert by[("row", "rejected", "malformed_timestamps")] == 1
    assert by[("row", "failed", "not_a_video")] == 1 and by[("row", "failed", "video_decode_error")] == 1
    assert by[("row", "failed", "http_error")] == 1
    assert by[("clip", "failed", "clip_out_of_range")] == 1
    assert by[("clip", "success", "")] == 6 + 2 + 1 + 1  # webvid videos, vidA's two clips, vidB's first, vidC
    # a clip sidecar that loses a row no longer matches its marker: its partition drops out of the counts, named
    sidecar = sorted((out / "clips").glob("?????.parquet"))[0]
    pq.write_table(pq.read_table(sidecar).slice(1), sidecar)
    after = video_stats(out)
    assert after["video_partitions_unfinished"] == "webvid_demo"
    levels = track_levels("video", out)
    assert accounting_holds(levels) and flat(levels)["rows_expected"] == after["video_accounting"]["rows_expected"] == 5
