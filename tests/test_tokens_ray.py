"""The image tokenizer stage gives the same codes on Ray Data actor pools as in the local loop."""

from __future__ import annotations

import io
import os

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from pipelines.tokenize.image_tokenizer import ImageTokenizer
from pipelines.core.runner import StageRunner


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("RAY_TMPDIR", f"/tmp/ray_tok_{os.getpid()}")


def _jpeg(w, h, seed):
    arr = np.random.default_rng(seed).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.slow
def test_ray_engine_matches_local():
    ray = pytest.importorskip("ray")
    sizes = [(64, 64), (96, 48), (64, 64), (48, 96), (400, 40), (64, 64)]
    table = pa.table({"key": [str(i) for i in range(len(sizes))],
                      "image": pa.array([_jpeg(w, h, i) for i, (w, h) in enumerate(sizes)], pa.binary())})
    stage = ImageTokenizer(vq_model="tiny", device="cpu", target_area=4096, min_area=1024, max_area=16384)
    local = StageRunner(engine="local", batch_size=4).run(stage, table)
    try:
        remote = StageRunner(engine="ray", batch_size=2, num_actors=1).run(stage, table)
    finally:
        ray.shutdown()
    for col in ("key", "h", "w", "codes", "drop_reason"):
        assert remote[col].to_pylist() == local[col].to_pylist()
    assert local["drop_reason"].to_pylist()[4] == "aspect_ratio_too_large"
