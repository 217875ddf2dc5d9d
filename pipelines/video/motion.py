"""Motion score of a clip: mean absolute luma difference between consecutive sampled frames, within shots.

Tessera's score is frame differencing, not optical flow: at 2 fps a pair is 0.5 s apart, and the mean |dY| / 255
over pixels tells a still (0 up to codec noise) from a moving shot without a flow model. Emu3's own score (paper
section 2.1) is the mean optical-flow magnitude over all pixels divided by the frame's shorter edge, on frames at
2 fps with short edge 256; its accepted range is not published, so the threshold here is calibrated on generated
clips (docs/video_curation.md). Pairs across a detected cut are left out: a slideshow is cuts between stills, and
its motion is that of its shots, none.
"""

from __future__ import annotations

import numpy as np


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (OpenCV's RGB2GRAY weights) as float32, 0..255."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def frame_differences(frames: list[np.ndarray]) -> np.ndarray:
    """Mean |luma difference| / 255 between each frame and the one before it (len(frames) - 1 values, 0..1)."""
    diffs = np.zeros(max(len(frames) - 1, 0), np.float32)
    previous = None
    for i, frame in enumerate(frames):
        current = luma(frame)
        if previous is not None:
            diffs[i - 1] = np.abs(current - previous).sum(dtype=np.float64) / (current.size * 255.0)
        previous = current
    return diffs


def motion_score(diffs, cuts: list[int]) -> float | None:
    """Mean frame difference over the pairs inside shots (pair i joins frames i and i + 1; a cut at frame c ends
    pair c - 1); None when no pair is left (a single frame, or a cut between every two frames)."""
    across = {c - 1 for c in cuts}
    inside = [float(d) for i, d in enumerate(diffs) if i not in across]
    return float(np.mean(inside)) if inside else None
