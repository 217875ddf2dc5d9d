"""Video speed: cutting (`tessera ingest --source webvid`: fetch over 127.0.0.1, decode, cut, re-encode) and Emu3
video tokenization (`tessera tokenize-video`), in clips/s and frames/s.

CPU (default): generated 320x240 clips at 24 fps served from a loopback server, cut to 8 fps / short side 256, then
tokenized with the tiny Emu3VQVAE at `--area` (default 128^2: the tiny model's cost grows with pixels). `--gpu`: the
real-size Emu3VQVAE shape (codebook 32768, base channels 256, multiplier (1,2,2,4), temporal factor 4; random init),
bf16, 4-frame groups of 512x512 through `encode_video` and through the reference math, with frames/s and code
agreement. Prints numbers; the last line is one JSON object.
"""

from __future__ import annotations

import sys

# Not bench/ itself on the path: a sibling script's name (bench/tokenize.py) would shadow the stdlib module.
_REPO = __file__.rsplit("/bench/", 1)[0]
sys.path[:1] = [_REPO]

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def bench_cpu(clips: int, seconds: float, area: int) -> dict:
    """Ingest (cut) and tokenize `clips` generated clips; clips/s and frames/s of each step."""
    from pipelines.demo.http_server import serve_folder
    from pipelines.ingest.fetch import FetchConfig
    from pipelines.video.download import VideoDownloadConfig
    from pipelines.video.ingest import ingest_video
    from pipelines.video.synthetic import synthetic_mp4
    from pipelines.video.tokenize import VideoTokenizerConfig, tokenize_videos

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "www").mkdir()
        for i in range(clips):
            kind = ("moving", "cut")[i % 2]
            (root / "www" / f"c{i}.mp4").write_bytes(synthetic_mp4(kind, seconds, fps=24, size=(320, 240), seed=i))
        with open(root / "webvid.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["videoid", "name", "page_idx", "page_dir", "duration", "contentUrl"])
            with serve_folder(root / "www") as base:
                for i in range(clips):
                    w.writerow([i, f"clip {i}", i, "p", f"PT00H00M{int(seconds):02d}S", f"{base}/c{i}.mp4"])
                f.flush()
                fetch = FetchConfig(allow_private_network=True, per_host_rate=1000.0, per_host_connections=16,
                                    max_image_bytes=64 * 1024 * 1024, timeout=60.0)
                config = VideoDownloadConfig(fps=8.0, video_size=256, threads=4, fetch=fetch)
                t0 = time.perf_counter()
                _, counts = ingest_video("webvid", [root / "webvid.csv"], root / "ingest", config=config,
                                         progress=False)
                cut_s = time.perf_counter() - t0
        cfg = VideoTokenizerConfig(vq_model="tiny", fps=8.0, target_area=area, min_area=area, max_area=4 * area)
        t0 = time.perf_counter()
        manifest = tokenize_videos(root / "ingest", root / "tokens", cfg, log=lambda s: None)
        tok_s = time.perf_counter() - t0
    frames = int(round(clips * seconds * 8))
    ok = counts["clips"].get("success", 0)
    result = {
        "clips": clips, "seconds_per_clip": seconds, "source": "320x240 @ 24 fps", "cut_to": "8 fps, short side 256",
        "clips_ok": ok, "cut_s": round(cut_s, 2), "cut_clips_per_s": round(ok / cut_s, 2),
        "tokenize_area": area, "tokenize_s": round(tok_s, 2), "tokenized": manifest.get("tokenized"),
        "tokenize_clips_per_s": round(ok / tok_s, 2), "tokenize_frames_per_s": round(frames / tok_s, 1),
    }
    print(f"cut: {ok}/{clips} clips in {cut_s:.2f} s = {result['cut_clips_per_s']} clips/s (4 threads)")
    print(f"tokenize-video (tiny, area {area}): {tok_s:.2f} s = {result['tokenize_clips_per_s']} clips/s, "
          f"{result['tokenize_frames_per_s']} frames/s (model load included)")
    return result


def bench_gpu(groups: int, batch: int, size: int) -> dict:
    """Real-size Emu3VQVAE (random init, bf16) on CUDA: `encode_video` against the reference math."""
    import torch
    from transformers import Emu3VQVAE, Emu3VQVAEConfig

    from models.vision_tokenizer import Emu3VisionTokenizer

    path = Path(tempfile.mkdtemp()) / "emu3_vq_real"
    torch.manual_seed(0)
    Emu3VQVAE(Emu3VQVAEConfig()).save_pretrained(path)
    tok = Emu3VisionTokenizer(str(path), device="cuda", dtype="bfloat16")
    x = torch.rand(batch, 4, 3, size, size, device="cuda") * 2 - 1
    m = tok.model

    def reference(v):
        hidden = m.encoder(v.to(m.dtype))
        return m.quantize(m.quant_conv(hidden.permute(0, 2, 1, 3, 4)).permute(0, 2, 1, 3, 4))

    with torch.inference_mode():
        agree = float((tok.encode_video(x) == reference(x)).float().mean())
        rates = {}
        for name, fn in (("encode_video", tok.encode_video), ("reference", reference)):
            fn(x)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(max(1, groups // batch)):
                fn(x)
            torch.cuda.synchronize()
            rates[name] = round(max(1, groups // batch) * batch * 4 / (time.perf_counter() - t0), 1)
    result = {"device": torch.cuda.get_device_name(), "size": size, "batch_groups": batch,
              "frames_per_s": rates, "code_agreement": agree, "peak_mem_gib": round(torch.cuda.max_memory_allocated()
                                                                                    / 2**30, 2)}
    print(f"GPU {result['device']}: {rates} frames/s at {size}x{size}, agreement {agree:.4f}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="real-size tokenizer on CUDA (bf16, 512x512 groups of 4)")
    ap.add_argument("--clips", type=int, default=20, help="generated clips to cut and tokenize (CPU)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each generated clip (CPU)")
    ap.add_argument("--area", type=int, default=128 * 128, help="tokenizer frame area (CPU, tiny model)")
    ap.add_argument("--quick", action="store_true", help="6 clips of 2 s")
    ap.add_argument("--groups", type=int, default=64, help="4-frame groups timed (GPU)")
    ap.add_argument("--batch", type=int, default=8, help="4-frame groups per forward pass (GPU)")
    ap.add_argument("--size", type=int, default=512, help="frame side (GPU)")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.seconds = 6, 2.0
    result = {"bench": "video", "cores": os.cpu_count()}
    if args.gpu:
        result["gpu"] = bench_gpu(args.groups, args.batch, args.size)
    else:
        result["cpu"] = bench_cpu(args.clips, args.seconds, args.area)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
