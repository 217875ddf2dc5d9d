"""The CLI: bad inputs stop with one clear line and a non-zero exit; `tessera stats --json` prints one object."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import write_parquet

from pipelines.cli.main import main


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def good(tmp_path):
    return write_parquet(tmp_path / "good.parquet", [{"URL": "http://127.0.0.1:9/x.jpg", "TEXT": "x"}])


def test_missing_file(capsys, tmp_path):
    code, _, err = _run(capsys, "ingest", "--source", "laion", "--metadata", str(tmp_path / "nope.parquet"),
                        "--out", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and "not found" in err and "nope.parquet" in err


def test_non_parquet_file(capsys, tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_text("url,text\nhttp://x,y\n")
    code, _, err = _run(capsys, "ingest", "--source", "laion", "--metadata", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and "not a readable parquet file" in err


def test_schema_without_the_sources_columns(capsys, tmp_path):
    meta = write_parquet(tmp_path / "coyo.parquet", [{"url": "http://h/x.jpg", "text": "x"}])
    code, _, err = _run(capsys, "ingest", "--source", "laion", "--metadata", str(meta), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and "'URL'" in err and "'TEXT'" in err


def test_parquet_with_corrupt_data_pages(capsys, tmp_path):
    """The footer reads fine (schema checks pass); the pages do not: one line naming the file, exit 2."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    clean = tmp_path / "clean.parquet"
    pq.write_table(pa.table({"URL": [f"http://h/{i}.jpg" for i in range(3000)],
                             "TEXT": [f"caption number {i} " * 8 for i in range(3000)]}), clean, compression="none")
    data = bytearray(clean.read_bytes())
    data[len(data) // 2:len(data) // 2 + 4000] = b"\xff" * 4000
    bad = tmp_path / "pages.parquet"
    bad.write_bytes(bytes(data))
    code, _, err = _run(capsys, "ingest", "--source", "laion", "--metadata", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "cannot read the metadata" in err and "pages.parquet" in err
    assert not list((tmp_path / "o").glob("partitions/*.json"))  # nothing recorded as prepared


def test_unwritable_out(capsys, tmp_path, good):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    code, _, err = _run(capsys, "ingest", "--source", "laion", "--metadata", str(good), "--out", str(blocker / "o"))
    assert code == 2 and err.count("\n") == 1 and "cannot write to output folder" in err


def test_stats_of_a_folder_that_is_not_an_output(capsys, tmp_path):
    code, _, err = _run(capsys, "stats", str(tmp_path))
    assert code == 2 and "holds no Tessera output" in err


def test_console_script_help_and_error_exit_code(tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "pipelines.cli.main", "ingest", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "--metadata" in help_text and "resumes" in help_text
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli.main", "ingest", "--source", "coyo", "--metadata",
                           str(tmp_path / "missing.parquet"), "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_stats_json_and_tables(capsys, demo_ingest):
    _, out = demo_ingest
    code, stdout, _ = _run(capsys, "stats", str(out), "--json")
    assert code == 0 and stdout.count("\n") == 1
    stats = json.loads(stdout)
    for key in ("input_rows", "success", "failed", "rejected", "shards"):
        assert isinstance(stats[key], int)
    assert stats["input_rows"] == stats["success"] + stats["failed"] + stats["rejected"]
    assert stats["shards"] == len(list((out / "shards").glob("*_stats.json")))
    png = out.parent / "stats.png"
    code, stdout, err = _run(capsys, "stats", str(out), "--plot", str(png))
    assert code == 0 and "Outcome of every input row" in stdout and "duplicate_url" in stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in err


@pytest.mark.parametrize("extra, needle", [
    (["--samples-per-shard", "0"], "--samples-per-shard must be at least 1"),
    (["--partition", "2024/01"], "--partition '2024/01'"),
    (["--image-size", "0"], "--image-size"),
])
def test_bad_options_are_one_line_and_leave_out_untouched(capsys, tmp_path, good, extra, needle):
    out = tmp_path / "out"
    code, _, err = _run(capsys, "ingest", "--source", "laion", "--metadata", str(good), "--out", str(out), *extra)
    assert code == 2 and err.count("\n") == 1 and needle in err
    assert not (out / "ingest.json").exists() and not (out / "partitions").exists()


def test_same_file_twice_is_refused(capsys, tmp_path, good):
    code, _, err = _run(capsys, "ingest", "--source", "laion", "--metadata", str(good), str(good),
                        "--out", str(tmp_path / "out"))
    assert code == 2 and "more than once" in err
