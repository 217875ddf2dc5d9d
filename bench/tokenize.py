"""Emu3 image tokenization speed: the tokenizer alone and the whole `tessera tokenize` stage.

CPU (default): the tiny config. `--gpu`: the real-size Emu3VQVAE shape (codebook 32768, embed dim 4, base channels 256,
multiplier (1,2,2,4), temporal factor 4; random init), bf16 weights, 512x512: transformers' `Emu3VQVAE.encode`
(reference) against Tessera's still-image path, with images/s, code agreement and pre-quantization latent error.
Prints numbers; the last line is one JSON object.
"""

from __future__ import annotations

import os
import sys

# This file's name shadows the standard library's `tokenize` (imported by `inspect`): drop its folder from the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.vision_tokenizer import Emu3VisionTokenizer  # noqa: E402


def _rate(fn, x, repeats: int) -> float:
    fn(x)  # warm-up (cuDNN autotune, allocator)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return repeats * x.shape[0] / (time.perf_counter() - t0)


def compare(tok: Emu3VisionTokenizer, x: torch.Tensor, repeats: int) -> dict:
    """Reference vs fast path on one batch: speed, code agreement, latent error."""
    ref_rate = _rate(tok.encode_reference, x, repeats)
    fast_rate = _rate(tok.encode, x, repeats)
    ref_codes, fast_codes = tok.encode_reference(x).cpu(), tok.encode(x).cpu()
    tok.dedupe_still = False
    ref_lat = tok.latents(x).float()
    tok.dedupe_still = True
    fast_lat = tok.latents(x).float()
    err = (fast_lat - ref_lat).abs()
    return {
        "reference_img_s": round(ref_rate, 2), "fast_img_s": round(fast_rate, 2),
        "speedup": round(fast_rate / ref_rate, 2),
        "code_agreement_pct": round(100.0 * (ref_codes == fast_codes).float().mean().item(), 4),
        "latent_max_abs_err": err.max().item(), "latent_mean_abs_err": err.mean().item(),
        "latent_rel_err": (err.norm() / ref_lat.norm().clamp_min(1e-12)).item(),
    }


def bench_cpu(n_images: int, batch: int, repeats: int) -> dict:
    """Tiny config on CPU: tokenizer alone (64x64 inputs) and the whole stage over a tiny ingest folder."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pipelines.tokenize.image_tokenizer import ImageTokenizerConfig
    from pipelines.core.runner import RunnerConfig
    from pipelines.tokenize.shards import tokenize_shards
    from tokens_fixture import make_ingest, samples

    torch.manual_seed(0)
    tok = Emu3VisionTokenizer("tiny", device="cpu")
    result = {"tokenizer_alone_64px_batch": batch, **compare(tok, torch.rand(batch, 3, 64, 64) * 2 - 1, repeats)}
    with tempfile.TemporaryDirectory() as tmp:
        ingest = make_ingest(Path(tmp) / "ingest", [samples("a", n_images, width=96, height=64)])
        cfg = ImageTokenizerConfig(vq_model="tiny", device="cpu", target_area=64 * 64, min_area=32 * 32,
                                   max_area=128 * 128, max_batch=batch)
        t0 = time.perf_counter()
        m = tokenize_shards(ingest, Path(tmp) / "out", cfg, RunnerConfig(batch_size=64), log=lambda *_: None)
        stage_rate = m["tokenized"] / (time.perf_counter() - t0)
    result.update(stage_images=n_images, stage_img_s=round(stage_rate, 2),
                  stage_vs_tokenizer_pct=round(100 * stage_rate / result["fast_img_s"], 1))
    return result


def bench_gpu(batch: int, repeats: int, size: int) -> dict:
    """Real-size random-init tokenizer, bf16 weights, on CUDA."""
    from transformers import Emu3VQVAE, Emu3VQVAEConfig

    path = Path(os.environ.get("TESSERA_CACHE", tempfile.gettempdir())) / "emu3_vq" / "realsize-random"
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        Emu3VQVAE(Emu3VQVAEConfig()).save_pretrained(path)
    tok = Emu3VisionTokenizer(str(path), device="cuda", dtype="bfloat16")
    x = (torch.rand(batch, 3, size, size) * 2 - 1).cuda()
    result = {"size": size, "batch": batch, "dtype": "bfloat16", "device": torch.cuda.get_device_name(),
              **compare(tok, x, repeats)}
    result["reference_anchor_img_s"] = 17.9  # docs/reference.md section 7: one H200, transformers 5.17, bf16 weights
    return result


def main() -> None:
    """Parse options, run, print a JSON line."""
    p = argparse.ArgumentParser()
    p.add_argument("--gpu", action="store_true", help="real-size config on CUDA (bf16, 512x512)")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", type=int, default=512)
    a = p.parse_args()
    torch.set_grad_enabled(False)
    if a.gpu:
        if not torch.cuda.is_available():
            sys.exit("--gpu needs CUDA")
        result = {"mode": "gpu", **bench_gpu(a.batch, a.repeats, a.size)}
    else:
        result = {"mode": "cpu_tiny", "threads": torch.get_num_threads(), **bench_cpu(a.images, a.batch, a.repeats)}
    for k, v in result.items():
        print(f"{k:>26}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
