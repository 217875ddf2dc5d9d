"""`tessera ingest` stores small originals at their own size unless `--upscale`, and every file it writes is 0644."""

from __future__ import annotations

import io
import tarfile

import pyarrow.parquet as pq
from conftest import write_parquet
from PIL import Image

from pipelines.cli.main import main
from pipelines.core import schema as S
from pipelines.core.shards import complete_shards

LOCAL = ["--allow-private-network", "--per-host-rate", "1000", "--processes", "1", "--threads", "4", "--quiet"]


def _stored_sizes(out) -> dict[str, tuple[int, int]]:
    """caption -> (width, height) of the image in the tar, checked against the sidecar."""
    (shard,) = complete_shards(out)
    side = {r[S.KEY]: r for r in pq.read_table(shard.parquet).to_pylist()}
    sizes = {}
    with tarfile.open(shard.tar) as tar:
        for member in tar:
            if member.name.endswith(".jpg"):
                size = Image.open(io.BytesIO(tar.extractfile(member).read())).size
                row = side[member.name[:-4]]
                assert size == (row[S.WIDTH], row[S.HEIGHT])
                sizes[row[S.CAPTION]] = size
    return sizes


def test_small_originals_are_not_upscaled_unless_asked(tmp_path, make_images):
    rows = [{"URL": make_images(1, "small", size=(40, 30))[0], "TEXT": "small"},
            {"URL": make_images(1, "big", size=(100, 80))[0], "TEXT": "big"}]
    meta = write_parquet(tmp_path / "m.parquet", rows)
    for out, extra in ((tmp_path / "plain", []), (tmp_path / "up", ["--upscale"])):
        assert main(["ingest", "--source", "laion", "--metadata", str(meta), "--out", str(out),
                     "--image-size", "64", *LOCAL, *extra]) == 0
    assert _stored_sizes(tmp_path / "plain") == {"small": (40, 30), "big": (80, 64)}
    assert _stored_sizes(tmp_path / "up") == {"small": (85, 64), "big": (80, 64)}

    # Everything ingest wrote is readable by all; its data files, written as 0600 temporaries, are exactly 0644.
    files = [p for p in (tmp_path / "plain").rglob("*") if p.is_file()]
    data = [p for p in files if p.suffix in (".tar", ".parquet", ".json")]
    assert {p.name for p in data} >= {"00000.tar", "00000.parquet", "00000_stats.json", "sizes.json", "m.parquet"}
    assert [str(p) for p in files if p.stat().st_mode & 0o444 != 0o444] == []
    assert {str(p): oct(p.stat().st_mode & 0o777) for p in data} == {str(p): "0o644" for p in data}
