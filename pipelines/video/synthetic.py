"""Generated test and demo clips (H.264 via PyAV): a moving square, a still frame, a hard scene cut, a slideshow.

Kinds, so curation has something to find: `moving` (a square crossing a gradient: motion, no cut), `static` (one
frame repeated: no motion), `cut` (two different scenes, a hard cut at the middle), `slideshow` (three stills, each
held for a third of the clip: cuts without motion in between).
"""

from __future__ import annotations

import numpy as np

from pipelines.video.media import encode_mp4

KINDS = ("moving", "static", "cut", "slideshow")


def _background(w: int, h: int, hue: int) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    rgb = np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                          np.full((h, w, 1), hue, np.float32)], axis=2)
    return rgb.astype(np.uint8)


def synthetic_frames(kind: str, seconds: float, fps: float, size: tuple[int, int] = (160, 120),
                     seed: int = 0) -> list[np.ndarray]:
    """RGB frames of one generated clip (see the module docstring for the kinds)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    w, h = size
    n = max(1, int(round(seconds * fps)))
    rng = np.random.default_rng(seed)
    base = _background(w, h, int(rng.integers(0, 255)))
    other = 255 - _background(w, h, int(rng.integers(0, 255)))
    frames = []
    for i in range(n):
        if kind == "static":
            frames.append(base.copy())
            continue
        if kind == "slideshow":
            third = min(2, i * 3 // n)
            frames.append([base, other, np.roll(base, w // 2, axis=1)][third].copy())
            continue
        frame = (base if kind == "moving" or i < n // 2 else other).copy()
        side = max(4, min(w, h) // 4)
        x = int((w - side) * i / max(1, n - 1))
        y = (h - side) // 2
        frame[y:y + side, x:x + side] = (255, 255, 255)
        frames.append(frame)
    return frames


def synthetic_mp4(kind: str, seconds: float = 2.0, fps: float = 10.0, size: tuple[int, int] = (160, 120),
                  seed: int = 0) -> bytes:
    """An MP4 (H.264) of a generated clip."""
    return encode_mp4(synthetic_frames(kind, seconds, fps, size, seed), fps)
