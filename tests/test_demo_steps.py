"""The demo's CLI calls parse with the real parser, and a non-demo folder is never wiped."""

from __future__ import annotations

import pytest

from pipelines.cli.main import build_parser
from pipelines.demo.run import _fresh, demo_steps
from pipelines.core.errors import TesseraUserError


def test_every_demo_step_is_a_valid_cli_call(tmp_path):
    parser = build_parser()
    docs = {"mmc4": tmp_path / "m.jsonl", "obelics": tmp_path / "o.parquet"}
    videos = {"webvid": tmp_path / "w.csv", "panda70m": tmp_path / "p.csv"}
    steps = demo_steps(tmp_path, tmp_path / "meta.parquet", docs, videos)
    assert [name for name, _ in steps] == ["ingest", "curate", "caption", "tokenize", "export-eva-clip",
                                           "ingest-mmc4", "ingest-obelics", "curate-documents",
                                           "tokenize-documents", "doc-sequences", "ingest-webvid",
                                           "ingest-panda70m", "curate-video", "tokenize-video",
                                           "export-video-frames", "report"]
    for _, argv in steps:
        args = parser.parse_args(argv)
        assert callable(args.func)


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(TesseraUserError):
        _fresh(tmp_path)
    assert (tmp_path / "precious.txt").exists()
