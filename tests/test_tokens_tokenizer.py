"""Emu3 vision tokenizer: preprocessing as Emu3 does it, the exact still-image fast path, and the stage."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from models.vision_tokenizer import (
    REASON_ASPECT,
    REASON_DECODE,
    Emu3VisionTokenizer,
    Preprocessing,
    preprocess,
    smart_size,
    tiny_checkpoint,
)
from pipelines.tokenize.image_tokenizer import ImageTokenizer

SMALL = dict(target_area=64 * 64, min_area=32 * 32, max_area=128 * 128)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _jpeg(w, h, seed=0):
    arr = np.random.default_rng(seed).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def test_smart_size_matches_emu3_rules():
    p = Preprocessing()
    assert smart_size(512, 512, p) == (512, 512)
    assert smart_size(362, 724, p) == (368, 728)  # rounded to multiples of 8, area already >= 512^2
    h, w = smart_size(100, 200, p)  # upscaled to at least 512^2, aspect kept, multiples of 8
    assert h % 8 == 0 and w % 8 == 0 and h * w >= 512 * 512 and abs(w / h - 2) < 0.05
    h, w = smart_size(2000, 2000, p)
    assert (h, w) == (1024, 1024)


def test_preprocess_target_area_range_and_aspect_drop():
    p = Preprocessing(target_area=720 * 720)
    x, reason = preprocess(Image.new("RGB", (1600, 900), (255, 0, 0)), p)
    assert reason is None and x.shape[0] == 3 and x.shape[1] % 8 == 0 and x.shape[2] % 8 == 0
    assert abs(x.shape[1] * x.shape[2] - 720 * 720) < 720 * 16
    assert torch.allclose(x[0], torch.ones_like(x[0]), atol=0.02)  # red -> +1, mean=std=0.5
    assert torch.allclose(x[1], -torch.ones_like(x[1]), atol=0.02)
    x, reason = preprocess(Image.new("RGB", (600, 100)), p)
    assert x is None and reason == REASON_ASPECT
    _, reason = preprocess(Image.new("RGB", (600, 100)), Preprocessing(max_aspect_ratio=7))
    assert reason is None


def test_tiny_is_saved_and_loaded_like_a_checkpoint():
    path = tiny_checkpoint()
    assert (path / "config.json").exists()
    tok = Emu3VisionTokenizer(str(path), device="cpu")
    assert tok.factor == 8 and tok.model.config.temporal_downsample_factor == 4


def test_still_image_fast_path_is_exact():
    tok = Emu3VisionTokenizer("tiny", device="cpu")
    x = torch.rand(3, 3, 64, 96) * 2 - 1
    fast = tok.encode(x)
    ref = tok.encode_reference(x)  # transformers' Emu3VQVAE.encode with the 4x temporal repeat
    assert fast.shape == (3, 8, 12)
    assert torch.equal(fast, ref)
    tok.dedupe_still = False
    slow_latent = tok.latents(x)
    tok.dedupe_still = True
    assert torch.equal(tok.latents(x), slow_latent)
    assert tok.decode(fast).shape == (3, 3, 64, 96)


def test_stage_groups_shapes_and_records_drop_reasons():
    stage = ImageTokenizer(vq_model="tiny", device="cpu", max_batch=2, **SMALL)
    images = [_jpeg(64, 64, 1), _jpeg(96, 48, 2), b"not an image", _jpeg(64, 64, 3), _jpeg(300, 40, 4)]
    batch = pa.table({"key": [str(i) for i in range(5)], "image": pa.array(images, pa.binary())})
    out = stage(batch)
    assert out["key"].to_pylist() == [str(i) for i in range(5)]
    reasons = out["drop_reason"].to_pylist()
    assert reasons == [None, None, REASON_DECODE, None, REASON_ASPECT]
    hs, ws = out["h"].to_pylist(), out["w"].to_pylist()
    assert (hs[0], ws[0]) == (8, 8) and hs[0] * ws[0] == len(out["codes"][0].as_py())
    assert ws[1] > hs[1]
    # Same image alone gives the same codes as inside a mixed batch.
    alone = stage(batch.slice(3, 1))
    assert alone["codes"][0].as_py() == out["codes"][3].as_py()
    assert all(0 <= c < 20 for c in out["codes"][0].as_py())
