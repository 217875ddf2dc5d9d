"""Naming CLIP models: a spec string resolves to an open_clip model name plus a weights reference.

Accepted specs:
  `tiny`                        a tiny random-init open_clip CLIP, built once into the local cache as a checkpoint folder
  `ViT-B-32:laion2b_s34b_b79k`  an open_clip model name with a pretrained tag (the name alone takes its first tag)
  `ViT-B-32:random`             the architecture with random weights (benchmarks, construction checks)
  `ViT-B-32:/path/ckpt.pt`      an open_clip model name with a local checkpoint file
  `hf-hub:org/repo`             an open_clip export on the Hugging Face hub
  `/path/to/folder`             a local export folder (`open_clip_config.json` + weights), like the tiny cache
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models.cache import cache_dir

TINY = "tiny"
RANDOM_TAG = "random"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_pytorch_model.bin"

# The real open_clip CLIP architecture, shrunk: a 2-layer ViT on 64 px images and a 2-layer text transformer.
TINY_MODEL_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TINY_PREPROCESS_CFG = {
    "size": 64,
    "mode": "RGB",
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


@dataclass(frozen=True)
class ClipSpec:
    """A resolved model reference: what to pass to `open_clip.create_model_and_transforms`."""

    model_id: str  # recorded with every score
    model_name: str  # open_clip name, or a `hf-hub:` / `local-dir:` reference
    pretrained: str | None  # tag or checkpoint file; None for schema references and random init


def resolve(spec: str) -> ClipSpec:
    """Turn a `--clip-model` value into a ClipSpec; builds the tiny checkpoint on first use."""
    import open_clip

    spec = spec.strip()
    if spec == TINY:
        folder = tiny_checkpoint_dir()
        return ClipSpec(TINY, f"local-dir:{folder}", None)
    if spec.startswith("hf-hub:"):
        return ClipSpec(spec, spec, None)
    if spec.startswith("local-dir:") or Path(spec).is_dir():
        folder = Path(spec.removeprefix("local-dir:")).resolve()
        if not (folder / CONFIG_FILE).is_file():
            raise ValueError(f"CLIP checkpoint folder {folder} has no {CONFIG_FILE}")
        return ClipSpec(f"local-dir:{folder}", f"local-dir:{folder}", None)
    name, _, ref = spec.partition(":")
    if name not in open_clip.list_models():
        raise ValueError(f"unknown CLIP model {name!r}: not an open_clip model name, hub id or checkpoint folder")
    if ref == RANDOM_TAG:
        return ClipSpec(f"{name}:{RANDOM_TAG}", name, None)
    if ref and Path(ref).is_file():
        return ClipSpec(f"{name}:{Path(ref).resolve()}", name, str(Path(ref).resolve()))
    tags = open_clip.list_pretrained_tags_by_model(name)
    if not ref:
        if not tags:
            raise ValueError(f"CLIP model {name!r} has no pretrained tag; give one as {name}:TAG or {name}:random")
        ref = tags[0]
    if ref not in tags:
        raise ValueError(f"CLIP model {name!r} has no pretrained tag or checkpoint file {ref!r}; tags: {tags}")
    return ClipSpec(f"{name}:{ref}", name, ref)


def tiny_checkpoint_dir() -> Path:
    """The tiny model's export folder in the cache, written (atomically) on first use."""
    folder = cache_dir("clip") / TINY
    if (folder / WEIGHTS_FILE).is_file():
        return folder
    write_checkpoint_dir(folder, TINY_MODEL_CFG, TINY_PREPROCESS_CFG, seed=0)
    return folder


def write_checkpoint_dir(folder: Path, model_cfg: dict, preprocess_cfg: dict, seed: int = 0) -> Path:
    """Build a random-init open_clip model from `model_cfg` and save it as an export folder at `folder`."""
    import open_clip
    import torch

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        torch.manual_seed(seed)
        model = open_clip.CLIP(**model_cfg)
        torch.save(model.state_dict(), tmp / WEIGHTS_FILE)
        config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / WEIGHTS_FILE).is_file():  # not a lost race with another process: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
