"""Hard scene cuts on decoded frames: PySceneDetect's ContentDetector, re-done on numpy (docs/video_curation.md).

ContentDetector converts each frame to 8-bit HSV the way OpenCV does (H 0..179, S and V 0..255), takes the mean
absolute difference of each channel between consecutive frames and averages the three (its default weights 1, 1, 1
and 0 for edges). A frame starts a new scene when that score is >= `threshold` (default 27) and at least
`min_scene_len` frames have passed since the previous cut, or since the first frame; this is PySceneDetect's
`FlashFilter` in SUPPRESS mode (its default MERGE mode differs only for cuts closer than `min_scene_len`).
PySceneDetect itself is not a dependency: it brings OpenCV (libGL for the non-headless wheel) and decodes the video
again on its own, while curation decodes once with PyAV at 2 fps and scores motion and CLIP from the same frames.
"""

from __future__ import annotations

import math

import numpy as np

CONTENT_THRESHOLD = 27.0  # PySceneDetect ContentDetector default; video2dataset's downsample_ml.yaml uses 11.5
MIN_SCENE_LEN_S = 0.5  # PySceneDetect's min_scene_len of 15 frames, at 30 fps

# OpenCV's fixed-point division tables for 8-bit RGB -> HSV (hsv_shift 12).
_SHIFT, _HALF = 12, 1 << 11
_DIV = np.arange(256, dtype=np.float64)
with np.errstate(divide="ignore"):
    _SDIV = np.where(_DIV == 0, 0, np.round((255 << _SHIFT) / _DIV)).astype(np.int32)
    _HDIV = np.where(_DIV == 0, 0, np.round((180 << _SHIFT) / (6.0 * _DIV))).astype(np.int32)


def hsv(rgb: np.ndarray) -> np.ndarray:
    """8-bit HSV of an RGB uint8 image, bit-exact with cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV): H 0..179, S, V 0..255.

    OpenCV's integer path: S = diff * round(255 * 2^12 / V) and H = h' * round(30 * 2^12 / diff), both rounded
    back by >> 12, where h' is the hue offset of the channel holding the maximum (R first, then G, then B)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    diff = (v - np.minimum(np.minimum(r, g), b)).astype(np.int32)
    s = (diff * _SDIV[v] + _HALF) >> _SHIFT
    r, g, b = r.astype(np.int32), g.astype(np.int32), b.astype(np.int32)
    h = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _HDIV[diff] + _HALF) >> _SHIFT
    h[h < 0] += 180
    return np.stack([h, s, v], axis=-1).astype(np.uint8)


def content_scores(frames: list[np.ndarray]) -> np.ndarray:
    """ContentDetector's `content_val` between each frame and the one before it (len(frames) - 1 values)."""
    scores = np.zeros(max(len(frames) - 1, 0), np.float32)
    previous = None
    for i, frame in enumerate(frames):
        current = hsv(frame).astype(np.int16)
        if previous is not None:
            # The mean of the three channel means: every channel has the same number of pixels.
            scores[i - 1] = np.abs(current - previous).sum(dtype=np.int64) / current.size
        previous = current
    return scores


def min_scene_frames(fps: float, seconds: float = MIN_SCENE_LEN_S) -> int:
    """`min_scene_len` in frames sampled at `fps` (at least 1)."""
    return max(1, math.ceil(seconds * fps - 1e-9))


def detect_cuts(scores, threshold: float = CONTENT_THRESHOLD, min_scene_len: int = 1) -> list[int]:
    """Indices of the frames that start a new scene; `scores[i]` compares frame i + 1 with frame i."""
    cuts, last = [], 0
    for i, score in enumerate(scores):
        frame = i + 1
        if score >= threshold and frame - last >= min_scene_len:
            cuts.append(frame)
            last = frame
    return cuts
