"""Interleaved-document costs: MMC4's image-to-sentence assignment (part 1) and document curation (part 2).

Part 1 times the assignment per document as images grow, against the similarity matrix it consumes (a matmul of
unit-norm 512-d embeddings, CPU, float32). Part 2 ingests generated MMC4 documents over 127.0.0.1 (setup) and times\n`tessera curate --preset mmc4`'s scoring and selection with the tiny CLIP. Last line of stdout: one JSON object.

The matmul figure depends on cache residency: --quick's 50 documents of embeddings stay in cache, the default
500 (~40 MB of sentence embeddings at 40 x 512) do not, which is closer to embeddings arriving fresh from a model.

    .venv/bin/python bench/documents.py            # or --quick
"""

from __future__ import annotations

import sys

# Not bench/ itself on the path: a sibling script's name (bench/tokenize.py) would shadow the stdlib module.
_REPO = __file__.rsplit("/bench/", 1)[0]
sys.path[:1] = [_REPO]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from pipelines.documents.assignment import assign_images  # noqa: E402

IMAGES_PER_DOC = (1, 2, 5, 10, 15, 20, 30, 50)
# BENCHMARKS.md, CLIP scoring: 55-100 ms per image of ViT-B-32 forward on the 2-core dev box (lower end taken).
CLIP_CPU_MS_PER_IMAGE_ANCHOR = 55.0


# ---- Part 1: assignment ----------------------------------------------------------------------------------------

def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _per_doc_us(fn, docs: list, repeats: int) -> float:
    """Median over repeats of the microseconds per document of `fn` applied to every document."""
    fn(docs[0])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for doc in docs:
            fn(doc)
        times.append((time.perf_counter() - start) / len(docs) * 1e6)
    return statistics.median(times)


def bench_shape(n_images: int, n_sentences: int, n_docs: int, repeats: int, dim: int, seed: int) -> dict:
    """Per-document microseconds of the similarity matmul and of assign_images for one document shape."""
    rng = np.random.default_rng(seed)
    embeds = [(_unit(rng, n_images, dim), _unit(rng, n_sentences, dim)) for _ in range(n_docs)]
    sims = [img @ txt.T for img, txt in embeds]
    sim_us = _per_doc_us(lambda pair: pair[0] @ pair[1].T, embeds, repeats)
    assign_us = _per_doc_us(assign_images, sims, repeats)
    return {"n_images": n_images, "n_sentences": n_sentences, "leftovers": max(0, n_images - n_sentences),
            "sim_matmul_us": round(sim_us, 2), "assign_us": round(assign_us, 2),
            "assign_over_matmul": round(assign_us / sim_us, 2)}


def bench_assignment(args) -> dict:
    """Both document families: sentences = max(images, 40), and sentences = images // 2 (leftover rule)."""
    cases = [(n, max(n, 40)) for n in IMAGES_PER_DOC]
    cases += [(n, n // 2) for n in IMAGES_PER_DOC if n // 2 >= 1]
    rows = []
    for n_images, n_sentences in cases:
        row = bench_shape(n_images, n_sentences, args.docs, args.repeats, args.dim, args.seed)
        rows.append(row)
        print(f"{n_images:>3} images x {n_sentences:>3} sentences: sim matmul {row['sim_matmul_us']:>8.1f} us/doc, "
              f"assign {row['assign_us']:>8.1f} us/doc ({row['assign_over_matmul']:.1f}x matmul)"
              + (f", {row['leftovers']} leftovers" if row["leftovers"] else ""))
    at30 = next(r for r in rows if r["n_images"] == 30 and r["n_sentences"] == 40)
    both_us = at30["assign_us"] + at30["sim_matmul_us"]
    clip_us = 30 * CLIP_CPU_MS_PER_IMAGE_ANCHOR * 1e3
    print(f"at 30 images x 40 sentences: assign + matmul = {both_us:.0f} us/doc ({1e6 / both_us:,.0f} docs/s, one "
          f"core); assign alone is {at30['assign_us'] / clip_us:.1e} of the ViT-B-32 CPU forward of those 30 images "
          f"(anchor {CLIP_CPU_MS_PER_IMAGE_ANCHOR:.0f} ms/image, BENCHMARKS.md)")
    return {"dim": args.dim, "docs_per_repeat": args.docs, "repeats": args.repeats, "shapes": rows,
            "docs_per_s_at_30_images": round(1e6 / both_us, 1),
            "clip_cpu_ms_per_image_anchor": CLIP_CPU_MS_PER_IMAGE_ANCHOR,
            "assign_over_clip_forward_at_30_images": float(f"{at30['assign_us'] / clip_us:.2e}")}


# ---- Part 2: curation ------------------------------------------------------------------------------------------

def _curation_sample(root, base_url: str, n_docs: int, images_per_doc: int, seed: int):
    """MMC4 JSON lines over generated JPEGs in `root/www` (half of the images unplaced, so assignment runs)."""
    import random

    from PIL import Image

    rng = random.Random(seed)
    words = "harbour boat market bread river house garden street light window morning evening people".split()
    (root / "www").mkdir(parents=True, exist_ok=True)
    lines = []
    for d in range(n_docs):
        infos = []
        for i in range(images_per_doc):
            name = f"d{d}_{i}.jpg"
            w, h = rng.choice([(320, 240), (256, 256), (240, 320), (400, 300)])
            Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3))).save(root / "www" / name, quality=80)
            info = {"raw_url": f"{base_url}/{name}"}
            if i % 2 == 0:
                info["matched_text_index"] = rng.randrange(8)
            infos.append(info)
        text = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 18))) + "." for _ in range(8)]
        lines.append(json.dumps({"url": f"http://bench/{d}", "text_list": text, "image_info": infos}))
    path = root / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_curation(args) -> dict:
    """Documents/s through `tessera curate --preset mmc4` with the tiny CLIP: scoring (images and sentences through
    open_clip) and the selection (rules, assignment, ledgers) timed apart; ingest over 127.0.0.1 is setup."""
    import tempfile
    from pathlib import Path

    from pipelines.demo.http_server import serve_folder
    from pipelines.documents.curate import select_documents
    from pipelines.documents.scores import score_documents
    from pipelines.documents.ingest import ingest_documents
    from pipelines.documents.presets import get_document_preset
    from pipelines.ingest.fetch import FetchConfig
    from pipelines.ingest.image_downloader import DownloadConfig

    n_docs = 40 if args.quick else 200
    per_doc = 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "www").mkdir()
        with serve_folder(root / "www") as base_url:
            path = _curation_sample(root, base_url, n_docs, per_doc, args.seed)
            fetch = FetchConfig(allow_private_network=True, per_host_rate=1000.0, per_host_connections=16)
            ingest_documents("mmc4", [path], root / "ingest", samples_per_shard=1000, progress=False,
                             download=DownloadConfig(processes=1, threads=16, image_size=256, fetch=fetch))
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        t0 = time.perf_counter()
        score_documents(root / "ingest", root / "cur", "tiny", batch_size=64, sources=("mmc4",))
        score_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        summary = select_documents(root / "ingest", root / "cur", [get_document_preset("mmc4")], -1.0)
        select_s = time.perf_counter() - t1
    figures = {
        "documents": n_docs, "images_per_document": per_doc, "clip_model": "tiny", "torch_threads": os.cpu_count(),
        "score_s": round(score_s, 3), "select_s": round(select_s, 3),
        "docs_per_s_scoring": round(n_docs / score_s, 1), "docs_per_s_selection": round(n_docs / select_s, 1),
        "docs_per_s_total": round(n_docs / (score_s + select_s), 1), "kept": summary["kept"],
    }
    print(f"curation (mmc4, tiny CLIP): {n_docs} docs x {per_doc} images: scoring {score_s:.2f} s "
          f"({figures['docs_per_s_scoring']} docs/s), selection {select_s:.2f} s "
          f"({figures['docs_per_s_selection']} docs/s), total {figures['docs_per_s_total']} docs/s")
    return figures


# ---- Entry -----------------------------------------------------------------------------------------------------

def main() -> None:
    """Parse options, run both parts, print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run: fewer documents and repeats")
    ap.add_argument("--docs", type=int, default=None, help="random documents per repeat (default 500, quick 50)")
    ap.add_argument("--repeats", type=int, default=None, help="timed passes, median reported (default 5, quick 3)")
    ap.add_argument("--dim", type=int, default=512, help="embedding dimension of the similarity matmul")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.docs = args.docs or (50 if args.quick else 500)
    args.repeats = args.repeats or (3 if args.quick else 5)
    assignment = bench_assignment(args)
    curation = bench_curation(args)
    if "skipped" in curation:
        print(f"curation: {curation['skipped']}")
    print(json.dumps({"bench": "documents", "quick": args.quick, "cores": os.cpu_count(),
                      "numpy": np.__version__, "assignment": assignment, "curation": curation}))


if __name__ == "__main__":
    main()
