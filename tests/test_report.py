"""Readable stats: keep-rate bands, the figures (real PNGs), and `tessera report` over an output root or one stage."""

from __future__ import annotations

import base64
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import mark_finished
from curate_testdata import build_ingest

from pipelines.cli.main import main
from pipelines.curate.presets import get_preset, keep_rate_band
from pipelines.curate.stats import keep_rate_warning
from pipelines.stats.ingest_figures import waterfall_steps
from pipelines.stats.png import is_png
from pipelines.stats.section import Table, md_table

IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def test_keep_rate_bands_and_warning():
    assert keep_rate_band(get_preset("datacomp_basic")) == (0.05, 0.9)
    assert keep_rate_band(get_preset("datacomp_basic"), top_fraction=0.5) == (0.05, 0.9)  # no top fraction in it
    assert keep_rate_band(get_preset("datacomp_clip_l14_30pct")) == (0.15, 0.31)
    low, high = keep_rate_band(get_preset("datacomp_clip_l14_30pct"), top_fraction=0.6)
    assert (low, high) == pytest.approx((0.3, 0.62))
    inside = {"keep_rate": 0.5, "keep_rate_band": [0.05, 0.9], "preset": "coyo"}
    assert keep_rate_warning(inside) is None
    warning = keep_rate_warning({**inside, "keep_rate": 0.01})
    assert warning.startswith("keep rate 1.0% is outside the band 5%-90% expected of preset coyo")
    assert "\n" not in warning
    assert keep_rate_warning({**inside, "keep_rate": None}).startswith("no samples were selected")


def test_waterfall_goes_from_input_rows_to_kept():
    stats = {"input_rows": 20, "success": 11,
             "outcomes": [{"outcome": "kept", "detail": "success", "n": 11},
                          {"outcome": "rejected", "detail": "duplicate_url", "n": 3},
                          {"outcome": "failed", "detail": "failed_to_download", "n": 5}],
             "fail_reasons": [{"status": "failed_to_download", "reason": "http_error", "n": 4},
                              {"status": "failed_to_download", "reason": "opt_out_header", "n": 1}]}
    steps = [(s["label"], s["n"]) for s in waterfall_steps(stats)]
    assert steps == [("input rows", 20), ("rejected: duplicate_url", -3), ("failed: http_error", -4),
                     ("failed: opt_out_header", -1), ("unaccounted", -1), ("kept", 11)]
    stats["input_rows"] = 0  # no partition manifests: start from the recorded rows, nothing unaccounted
    assert [s["label"] for s in waterfall_steps(stats)][-2:] == ["failed: opt_out_header", "kept"]


def test_markdown_table_escapes_cells():
    table = Table("t", [{"a": "x | y", "b": 1234}], {"a": "class", "b": "rows"})
    assert md_table(table).splitlines() == ["| class | rows |", "|---|---|", "| x \\| y | 1,234 |"]
    assert md_table(Table("t", [], {"a": "class"})).splitlines()[-1] == "| (none) |"


@pytest.fixture(scope="module")
def output_root(tmp_path_factory):
    """An output root as the demo lays it out: ingest/ and curate/ from the real commands, captions/ and tokens/
    with one finished part each, written the way their jobs write them."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_CACHE", str(tmp_path_factory.mktemp("tessera_cache")))
    root = tmp_path_factory.mktemp("root")
    ingest = build_ingest(root / "ingest")
    assert main(["curate", str(ingest), "--preset", "coyo", "--out", str(root / "curate"), "--clip-model", "tiny"]) == 0
    fused = root / "captions" / "captions"
    fused.mkdir(parents=True)
    pq.write_table(pa.table({
        "key": ["a", "b", "c"], "raw_caption": ["a red house", "two words", "cheap shoes buy now online"],
        "synthetic_caption": ["a small red house by a lake", "a dog", "a pair of shoes"],
        "fused_caption": ["a small red house by a lake", "dog dog dog dog", "a pair of red shoes"],
        "final_caption": ["a small red house by a lake", "two words", "a pair of red shoes"],
        "caption_source": ["fused", "raw", "fused"], "status": ["ok", "repetition", "ok"],
    }), fused / "00000.parquet")
    mark_finished(fused, "", "00000", ["00000.parquet"],
                  {"rows": 3, "statuses": {"ok": 2, "repetition": 1}, "caption_sources": {"fused": 2, "raw": 1}})
    tokens = root / "tokens"
    (tokens / "emu3_tokens").mkdir(parents=True)
    pq.write_table(pa.table({"key": ["a", "b", "c"], "caption": ["x", "y", "z"], "h": pa.array([8, 8, 4], pa.int32()),
                             "w": pa.array([8, 8, 6], pa.int32()),
                             "codes": pa.array([[1] * 64, [2] * 64, [3] * 24], pa.list_(pa.int32())),
                             "tokenizer": ["emu3_vq:tiny"] * 3}), tokens / "emu3_tokens" / "00000.parquet")
    mark_finished(tokens, "emu3_tokens", "00000", ["emu3_tokens/00000.parquet"], {"samples": 4, "tokenized": 3})
    (tokens / "manifest.json").write_text(json.dumps({"tokenizer": "emu3_vq:tiny", "samples": 4, "tokenized": 3,
                                                      "total_tokens": 152, "dropped": {"image_too_small": 1}}))
    yield root
    mp.undo()


def test_report_of_an_output_root_has_every_stage(output_root, capsys):
    assert main(["report", str(output_root)]) == 0
    path = output_root / "report.html"
    assert f"report: {path}" in capsys.readouterr().out
    page = path.read_text()
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "<link" not in page and 'src="http' not in page  # self-contained
    for stage in ("ingest", "curate", "captions", "tokens"):
        assert f'<section id="{stage}">' in page
    images = dict(IMG.findall(page))
    assert set(images) == {"Outcome waterfall", "Image size scatter", "CLIP score histogram",
                           "Caption length before and after fusion", "Tokens per image"}
    assert all(is_png(base64.b64decode(data)) for data in images.values())
    # The tables behind the asset pages: outcomes, drops by reason, caption sources, tokens.
    assert "<td>failed_to_download</td>" in page and "<td>duplicate_image</td>" in page
    assert "<td>repetition</td>" in page and "Where the final caption came from" in page
    assert '<td>image_too_small</td><td class="num">1</td>' in page
    assert '<td class="num">8</td><td class="num">8</td><td class="num">64</td><td class="num">2</td>' in page
    assert '<th>keep_rate_band</th><td>0.05-0.95</td>' in page


def test_report_of_one_stage_folder(output_root, tmp_path):
    target = tmp_path / "sub" / "ingest.html"
    assert main(["report", str(output_root / "ingest"), "--out", str(target)]) == 0
    page = target.read_text()
    assert '<section id="ingest">' in page and '<section id="curate">' not in page
    assert set(dict(IMG.findall(page))) == {"Outcome waterfall", "Image size scatter"}


def test_report_on_an_empty_or_missing_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tessera: error:") and "nothing to report" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "empty" / "report.html").exists()
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
