"""Benchmark CapsFusion caption fusion: fused captions/s and generated tokens/s per backend.

    python bench/fuse.py                  # this machine: tiny Llama, transformers backend (+ vLLM when installed)
    python bench/fuse.py --realistic      # a lent GPU: random-init ~1B Llama shape, bf16, transformers backend

Runs the CaptionFuser stage through the local StageRunner with the CapsFusion reference settings (3 beams, 80 new
tokens, 256-token prompts) unless overridden. Model loading and one warm-up batch are not timed. Random weights
rarely stop early, so nearly every row generates the full `--max-new-tokens`: a worst case for throughput.
The last line printed is one JSON object with every row of the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Import from the repo root, not from bench/ (a bench script named like a stdlib module would shadow it).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import pyarrow as pa  # noqa: E402

from models.generation import vllm_installed  # noqa: E402
from pipelines.caption.caption_fuser import CaptionFuser  # noqa: E402
from pipelines.caption.hygiene import finalize_captions  # noqa: E402
from pipelines.core.runner import StageRunner, cuda_available  # noqa: E402

RAWS = ["Buy cheap RED shoes online 2024 free shipping best price", "london 1920 train station old photo",
        "IMG_0042.JPG", "mountain lake landscape with snow blue sky and clouds, stock photo"]
SYNS = ["a pair of red shoes on a white background", "an old black and white picture of a train station",
        "a cat sitting on a wooden table next to a window", "a lake with mountains and snow under a blue sky"]


def rows(n: int) -> pa.Table:
    """`n` CapsFusion-style rows (raw alt-text + synthetic caption)."""
    return pa.table({
        "key": [f"b{i:06d}" for i in range(n)],
        "raw_caption": [f"{RAWS[i % 4]} #{i}" for i in range(n)],
        "synthetic_caption": [SYNS[i % 4] for i in range(n)],
    })


def build_realistic_llm(path: Path) -> Path:
    """A random-init ~1.1B-parameter Llama (TinyLlama-1.1B shape) in bf16, saved with the tiny tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from models.tiny_text import train_tokenizer

    tokenizer = train_tokenizer()
    config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def measure(model: str, backend: str, table: pa.Table, args) -> dict:
    """Time the fuser stage over `table` after a warm-up batch."""
    stage = CaptionFuser(model=model, backend=backend, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens)
    runner = StageRunner(engine="local", batch_size=args.batch_size)
    runner.run([stage], table.slice(0, args.batch_size))  # load + warm up
    start = time.perf_counter()
    out = finalize_captions(runner.run([stage], table))
    seconds = time.perf_counter() - start
    tokens = sum(out.column("generated_tokens").to_pylist())
    return {"backend": backend, "rows": out.num_rows, "seconds": round(seconds, 2),
            "captions_per_s": round(out.num_rows / seconds, 2), "generated_tokens_per_s": round(tokens / seconds, 1),
            "mean_new_tokens": round(tokens / max(out.num_rows, 1), 1)}


def main() -> int:
    """Run the benchmark and print a table plus one JSON line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--realistic", action="store_true", help="random-init ~1.1B Llama in bf16 (use on a GPU)")
    p.add_argument("--rows", type=int, default=None, help="default 32 (tiny) or 512 (realistic)")
    p.add_argument("--batch-size", type=int, default=None, help="default 16 (tiny) or 64 (realistic)")
    p.add_argument("--num-beams", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=80)
    args = p.parse_args()
    args.rows = args.rows or (512 if args.realistic else 32)
    args.batch_size = args.batch_size or (64 if args.realistic else 16)
    import torch

    from models.tiny_text import tiny_llm_path

    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_realistic_llm(Path(tmp) / "llm")) if args.realistic else str(tiny_llm_path())
        table = rows(args.rows)
        results = [measure(model, "transformers", table, args)]
        if vllm_installed() and cuda_available():
            results.append(measure(model, "vllm", table, args))
        else:
            results.append({"backend": "vllm", "status": "not installed" if not vllm_installed() else "no GPU"})
    device = torch.cuda.get_device_name(0) if cuda_available() else f"CPU ({platform.processor() or 'x86_64'})"
    summary = {"bench": "fuse", "model": "random-init Llama ~1.1B bf16" if args.realistic else "tiny Llama fp32",
               "device": device, "threads": torch.get_num_threads(), "num_beams": args.num_beams,
               "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "results": results}
    print(f"{'backend':<14}{'rows':>6}{'captions/s':>12}{'gen tok/s':>12}{'new tok/row':>13}")
    for r in results:
        if "status" in r:
            print(f"{r['backend']:<14}{r['status']:>43}")
        else:
            print(f"{r['backend']:<14}{r['rows']:>6}{r['captions_per_s']:>12}{r['generated_tokens_per_s']:>12}"
                  f"{r['mean_new_tokens']:>13}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
