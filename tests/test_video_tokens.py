"""Emu3 video tokens: `encode_video` against the model's own math, `tessera tokenize-video` over hand-built clip
shards (grid shapes, padding, resume, --curated, drop reasons), and the video sequence id by id."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from conftest import add_tar_member, mark_finished, write_parquet
from models.vision_tokenizer import Emu3VisionTokenizer, Preprocessing, preprocess
from pipelines.cli.main import main
from pipelines.tokenize.emu3_sequence import (BOS, EOF, EOV, IGNORE, build_input_ids, build_video_input_ids,
                                              image_ids, video_ids)
from pipelines.video.media import decode_frames
from pipelines.video.synthetic import synthetic_mp4
from test_documents_sequences import emu3_tok  # noqa: F401  (Emu3's real id layout, shared fixture)

SMALL = ["--target-area", str(64 * 48), "--min-area", "1024", "--max-area", str(128 * 128)]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def tok():
    return Emu3VisionTokenizer("tiny", device="cpu")


def _reference(model, x: torch.Tensor) -> torch.Tensor:
    """transformers' Emu3VQVAE.encode for 5-D input without its final crop (which cuts time and rows on video)."""
    with torch.no_grad():
        return model.quantize(model.quant_conv(model.encoder(x).permute(0, 2, 1, 3, 4)).permute(0, 2, 1, 3, 4))


@pytest.mark.parametrize("shape", [(1, 4, 48, 64), (2, 8, 64, 48), (3, 12, 32, 40)])
def test_encode_video_equals_model_math(tok, shape):
    b, t, h, w = shape
    x = torch.rand(b, t, 3, h, w, generator=torch.Generator().manual_seed(t)) * 2 - 1
    codes = tok.encode_video(x)
    assert codes.shape == (b, t // 4, h // 8, w // 8)
    assert torch.equal(codes, _reference(tok.model, x))
    assert codes.unique().numel() > 1  # not a degenerate constant grid


def test_transformers_encode_crops_video_time_and_rows(tok):
    x = torch.rand(1, 8, 3, 64, 48) * 2 - 1
    out = tok.model.encode(x, torch.tensor([[64, 48]]))
    crop = list(out.image_tokens) if hasattr(out, "image_tokens") else list(out)
    assert tuple(crop[0].shape) == (2, 6, 6)  # the bug documented in docs/video_tokens.md: (T', h, w) cut as (h, w)
    assert tok.encode_video(x).shape == (1, 2, 8, 6)


def test_still_clip_equals_image_path_and_bad_lengths_fail(tok):
    image = torch.rand(2, 3, 48, 64) * 2 - 1
    assert torch.equal(tok.encode_video(image.unsqueeze(1).repeat(1, 4, 1, 1, 1))[:, 0], tok.encode(image))
    with pytest.raises(ValueError, match="multiple of 4"):
        tok.encode_video(torch.zeros(1, 6, 3, 48, 64))


def _clip_shard(root, clips: dict[str, bytes | None], sid="00000", failed=("gone",)):
    """A video ingest shard as schema.py lays it out: clips/NNNNN.{tar,parquet} + marker, via the shard job."""
    (root / "clips").mkdir(parents=True, exist_ok=True)
    with tarfile.open(root / "clips" / f"{sid}.tar", "w") as tf:
        for key, data in clips.items():
            if data is None:
                continue
            add_tar_member(tf, f"{key}.mp4", data)
            add_tar_member(tf, f"{key}.txt", f"caption of {key}".encode())
            add_tar_member(tf, f"{key}.json", json.dumps({"key": key}).encode())
    rows = [{"key": k, "caption": f"caption of {k}", "status": "success", "reason": None} for k in clips]
    rows += [{"key": k, "caption": "x", "status": "failed", "reason": "not_a_video"} for k in failed]
    write_parquet(root / "clips" / f"{sid}.parquet", rows)
    mark_finished(root, "clips", sid, [f"clips/{sid}.tar", f"clips/{sid}.parquet"], {"clips": len(rows)})


@pytest.fixture
def ingest(tmp_path):
    good = synthetic_mp4("moving", 2.0, 10.0, (64, 48), seed=1)
    clips = {"a_000": good, "b_000": synthetic_mp4("cut", 2.0, 10.0, (64, 48), seed=2),
             "c_000": synthetic_mp4("static", 1.2, 10.0, (64, 48)), "bad_000": good[: len(good) // 3],
             "wide_000": synthetic_mp4("moving", 1.0, 10.0, (256, 40)), "lost_000": None}
    _clip_shard(tmp_path / "ing", clips)
    return tmp_path / "ing", clips


def _tokens(out):
    return {r["key"]: r for r in pq.read_table(out / "video_tokens" / "00000.parquet").to_pylist()}


def test_tokenize_video_grids_padding_ledger_and_resume(tok, ingest, tmp_path, capsys):
    src, clips = ingest
    out = tmp_path / "out"
    assert main(["tokenize-video", str(src), "--out", str(out), "--sample-fps", "5", "--batch-size", "2", *SMALL]) == 0
    assert "tokenized 3/6 clips" in capsys.readouterr().out
    rows = _tokens(out)
    assert set(rows) == {"a_000", "b_000", "c_000"}
    a, c = rows["a_000"], rows["c_000"]
    # 2 s at 5 fps = 10 frames -> 3 groups of 4, 2 padded; 48x64 -> 6x8 codes per latent frame
    assert (a["t"], a["h"], a["w"], a["frames"], a["padded_frames"]) == (3, 6, 8, 10, 2)
    assert (c["t"], c["frames"], c["padded_frames"]) == (2, 6, 2) and len(c["codes"]) == 2 * 6 * 8
    assert a["caption"] == "caption of a_000" and a["fps"] == 5.0 and a["tokenizer"] == "emu3_vq:tiny"
    dropped = dict((r["key"], r["drop_reason"]) for r in pq.read_table(out / "video_dropped" / "00000.parquet")
                   .to_pylist())
    assert dropped == {"bad_000": "video_decode_error", "wide_000": "aspect_ratio_too_large",
                       "lost_000": "missing_in_tar"}
    # the codes are the reference math over the clip's own frames, each 4-frame group a clip of its own
    frames, _ = decode_frames(clips["a_000"], fps=5)
    prep = Preprocessing(64 * 48, 1024, 128 * 128)
    px = torch.stack([preprocess(Image.fromarray(f), prep)[0] for f in frames] + [preprocess(
        Image.fromarray(frames[-1]), prep)[0]] * 2)
    expected = _reference(tok.model, px.reshape(3, 4, 3, 48, 64))[:, 0]
    assert np.array_equal(np.array(a["codes"]).reshape(3, 6, 8), expected.numpy())
    manifest = json.loads((out / "video_manifest.json").read_text())
    assert (manifest["clips"], manifest["tokenized"], manifest["frames"], manifest["padded_frames"]) == (6, 3, 26, 6)
    assert manifest["total_tokens"] == (3 + 3 + 2) * 48
    # a rerun writes nothing; other settings on the same folder are refused
    # lock files record their last holder (pid, host, command), so taking a lock rewrites one: outputs only
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")
              if p.is_file() and p.name != "video_manifest.json" and ".locks" not in p.parts}
    assert main(["tokenize-video", str(src), "--out", str(out), "--sample-fps", "5", *SMALL]) == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert main(["tokenize-video", str(src), "--out", str(out), "--fps", "8", *SMALL]) == 2  # the old name warns
    err = capsys.readouterr().err
    assert err.startswith("tessera: warning: --fps is deprecated here, use --sample-fps\n")
    assert "other settings: fps=5.0 (now 8.0)" in err


def test_tokenize_video_curated_max_frames_and_bad_input(ingest, tmp_path, capsys):
    src, _ = ingest
    write_parquet(tmp_path / "cur" / "curated" / "00000.parquet", [{"key": "b_000"}, {"key": "bad_000"}])
    out = tmp_path / "out"
    assert main(["tokenize-video", str(src), "--out", str(out), "--curated", str(tmp_path / "cur"),
                 "--max-frames", "5", *SMALL]) == 0
    rows = _tokens(out)
    assert list(rows) == ["b_000"] and (rows["b_000"]["frames"], rows["b_000"]["t"]) == (5, 2)
    manifest = json.loads((out / "video_manifest.json").read_text())
    assert manifest["skipped"] == {"not_curated": 4} and manifest["dropped"] == {"video_decode_error": 1}
    assert main(["tokenize-video", str(tmp_path / "cur"), "--out", str(tmp_path / "o2")]) == 2
    assert "not a video ingest output folder (no clips/ inside)" in capsys.readouterr().err


GRID = np.array([[[0, 1, 2], [5, 6, 7]], [[32767, 3, 4], [8, 9, 10]], [[11, 12, 13], [14, 15, 16]]])


def _vt(c: int) -> str:
    return f"<|visual token {c:06d}|>"


def _emu3_video_string(caption: str, grid: np.ndarray) -> str:
    """The video the Emu3 data code's way (datasets.py `format_image_prompt`, one image per latent frame)."""
    t, h, w = grid.shape
    frames = "".join("".join("".join(_vt(c) for c in row) + "<|extra_200|>" for row in f) + "<|extra_201|>"
                     for f in grid)
    return f"<|extra_203|>{caption}<|image start|>{t}*{h}*{w}<|image token|>{frames}<|image end|>"


def _univla_video_string(grid: np.ndarray) -> str:
    """baaivision/UniVLA train/datasets.py `format_video_prompt`: frames flat, joined and ended by EOF, no EOL."""
    t, h, w = grid.shape
    body = "<|extra_201|>".join("".join(_vt(c) for c in f.flatten()) for f in grid)
    return f"<|image start|>{t}*{h}*{w}<|image token|>{body}<|extra_201|><|image end|>"


def test_video_sequence_matches_independent_construction(emu3_tok):  # noqa: F811
    caption = "The cat sat on the mat."
    expected = emu3_tok.encode(_emu3_video_string(caption, GRID), add_special_tokens=False)
    cap_ids = emu3_tok.encode(caption, add_special_tokens=False)
    ids, labels = build_video_input_ids(cap_ids, GRID, emu3_tok)
    assert ids == expected and labels == expected
    assert ids[0] == BOS and ids[-1] == EOV and ids.count(EOF) == 3 and 184621 in ids
    univla = emu3_tok.encode(_univla_video_string(GRID), add_special_tokens=False)
    assert video_ids(GRID, emu3_tok, row_eol=False) == univla
    # one latent frame is the image layout with "1*h*w" as meta text
    one = video_ids(GRID[:1], emu3_tok, meta="2*3")
    assert one == image_ids(GRID[0], emu3_tok)
    assert build_video_input_ids(cap_ids, GRID[:1], emu3_tok, meta="2*3") == build_input_ids(cap_ids, GRID[0],
                                                                                             emu3_tok)
    u_ids, u_labels = build_video_input_ids(cap_ids, GRID, emu3_tok, understanding=True, meta="fps 8, 1.5 s")
    assert u_ids[-1] == 151850 and u_labels[: -len(cap_ids) - 1] == [IGNORE] * (len(u_ids) - len(cap_ids) - 1)
    assert emu3_tok.decode(u_ids[2:2 + len(emu3_tok.encode("fps 8, 1.5 s", add_special_tokens=False))]) \
        == "fps 8, 1.5 s"
    with pytest.raises(ValueError, match="3-D"):
        video_ids(GRID[0], emu3_tok)
