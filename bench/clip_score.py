"""CLIP scoring throughput: (a) the model alone on pre-decoded tensors, (b) the whole scoring stage from shards
(tar read, JPEG decode, resize, forward, pHash, parquet write). ViT-B-32 shape, random weights (throughput does
not depend on weight values). On CUDA the stage decodes with nvjpeg. Last line: one JSON object.

    .venv/bin/python bench/clip_score.py --images 256 --batch-size 64
"""

from __future__ import annotations

import sys

# Not bench/ itself on the path: a sibling script's name (bench/tokenize.py) would shadow the stdlib module.
_REPO = __file__.rsplit("/bench/", 1)[0]
sys.path[:1] = [_REPO, _REPO + "/tests"]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def bench_model(scorer, n: int, batch: int) -> tuple[float, float]:
    """Images/s (wall, and per CPU-second of this process) of image + text encoders on ready tensors."""
    import torch

    size = scorer.preprocess_cfg["size"]
    pixels = torch.randn(batch, 3, *size)
    texts = ["a photo of a small red house near the lake"] * batch
    scorer.embed_images(pixels), scorer.embed_texts(texts)  # warm-up
    _sync(scorer.device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(max(1, n // batch)):
        (scorer.embed_images(pixels) * scorer.embed_texts(texts)).sum(-1).cpu()
    _sync(scorer.device)
    done = max(1, n // batch) * batch
    return done / (time.perf_counter() - start), done / (time.process_time() - cpu)


def bench_stage(stages, root: Path, n: int, batch: int) -> tuple[float, float, float]:
    """Images/s (wall, per CPU-second) and seconds of the scoring stage over a fresh shard (model loaded)."""
    from curate_testdata import build_ingest
    from pipelines.curate.scoring import score_shard
    from pipelines.core.runner import StageRunner
    from pipelines.core.shards import complete_shards

    rows = [{"caption": f"a photo of a small red house near the lake {i}", "seed": i, "w": 640, "h": 480,
             "url": f"http://img.test/{i}.jpg", "nsfw": 0.1, "size": (256, 192)} for i in range(n)]
    ingest = build_ingest(root / "ingest", rows=rows, per_shard=n, failed_per_shard=0)
    shard = complete_shards(ingest)[0]
    runner = StageRunner(engine="local", batch_size=batch)
    stages[0](_one_row(shard)), stages[1](_one_row(shard))  # setup outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    stats = score_shard(shard, root / "out", stages, runner, "bench", with_embeddings=False)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    return stats["samples"] / seconds, stats["samples"] / cpu_s, seconds


def _one_row(shard):
    from pipelines.curate.scoring import shard_pairs

    return shard_pairs(shard).slice(0, 1)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    import torch

    from models.clip_scorer import ClipScorer
    from pipelines.curate.stages.clip_score_annotator import ClipScoreAnnotator
    from pipelines.curate.stages.image_hash_annotator import ImageHashAnnotator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-32:random")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    scorer = ClipScorer(args.model, device=device, precision=args.precision)
    model_ips, model_cpu = bench_model(scorer, args.images, args.batch_size)
    print(f"(a) model alone, {args.model}, batch {args.batch_size}, {device}: {model_ips:.1f} img/s "
          f"({model_cpu:.2f} img per CPU-second)")
    clip = ClipScoreAnnotator(model=args.model, device=device, precision=args.precision)
    clip.scorer, clip._ready = scorer, True  # reuse the loaded model: the timing is about the stage, not loading
    with tempfile.TemporaryDirectory() as tmp:
        stage_ips, stage_cpu, seconds = bench_stage([clip, ImageHashAnnotator()], Path(tmp), args.images,
                                                    args.batch_size)
    print(f"(b) whole stage from shards ({'nvjpeg' if device == 'cuda' else 'PIL'} decode): {stage_ips:.1f} img/s "
          f"({stage_cpu:.2f} img per CPU-second; {args.images} images in {seconds:.1f} s)")
    # On a shared machine wall time swings with other load; CPU time of this process does not.
    print(f"(b)/(a) = {stage_ips / model_ips:.1%} wall, {stage_cpu / model_cpu:.1%} CPU time (goal >= 80%)")
    print(json.dumps({"bench": "clip_score", "model": args.model, "device": device, "batch_size": args.batch_size,
                      "precision": args.precision, "images": args.images, "cpu_threads": torch.get_num_threads(),
                      "cores": os.cpu_count(), "model_img_per_s": round(model_ips, 2),
                      "stage_img_per_s": round(stage_ips, 2), "stage_over_model": round(stage_ips / model_ips, 3),
                      "model_img_per_cpu_s": round(model_cpu, 3), "stage_img_per_cpu_s": round(stage_cpu, 3),
                      "stage_over_model_cpu": round(stage_cpu / model_cpu, 3)}))


if __name__ == "__main__":
    main()
