"""GPU image preprocessing: nvjpeg decode (`torchvision.io.decode_jpeg(device="cuda")`) then resize, crop and
normalise on the GPU with the model's open_clip preprocess config, so a fast GPU is not starved by PIL."""

from __future__ import annotations

from typing import Callable

JPEG_MAGIC = b"\xff\xd8\xff"


def _resize_crop(img, size: tuple[int, int], interpolation: str, resize_mode: str):
    """open_clip's eval geometry on one CHW uint8 tensor: `shortest` = resize short side + centre crop."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    mode = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}.get(
        interpolation, InterpolationMode.BICUBIC
    )
    if resize_mode == "squash":
        return F.resize(img, list(size), interpolation=mode, antialias=True)
    img = F.resize(img, min(size), interpolation=mode, antialias=True)
    return F.center_crop(img, list(size))


def gpu_preprocess(images: list[bytes], cfg: dict, device: str, fallback: Callable):
    """A normalised float batch on `device` plus per-image errors; non-JPEG or undecodable images go through
    `fallback` (the PIL path), so the GPU path never changes which samples get a score."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    size = cfg["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    if cfg.get("resize_mode", "shortest") not in ("shortest", "squash"):
        pixels, errors = fallback(images)
        return pixels.to(device), errors
    mean = torch.tensor(cfg["mean"], device=device).view(3, 1, 1)
    std = torch.tensor(cfg["std"], device=device).view(3, 1, 1)
    out = torch.empty(len(images), 3, *size, device=device)
    errors: list[str | None] = [None] * len(images)
    jpeg_idx = [i for i, b in enumerate(images) if b[:3] == JPEG_MAGIC]
    other_idx = [i for i in range(len(images)) if i not in set(jpeg_idx)]
    decoded: list = []
    if jpeg_idx:
        data = [torch.frombuffer(bytearray(images[i]), dtype=torch.uint8) for i in jpeg_idx]
        try:
            decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one bad JPEG fails the whole batch call: retry those on the PIL path
            other_idx, decoded, jpeg_idx = sorted(other_idx + jpeg_idx), [], []
    for i, img in zip(jpeg_idx, decoded):
        img = _resize_crop(img, size, cfg.get("interpolation", "bicubic"), cfg.get("resize_mode", "shortest"))
        out[i] = (img.float() / 255.0 - mean) / std
    if other_idx:
        pixels, errs = fallback([images[i] for i in other_idx])
        out[other_idx] = pixels.to(device)
        for i, err in zip(other_idx, errs):
            errors[i] = err
    return out, errors
