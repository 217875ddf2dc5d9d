"""MMC4's image-to-sentence assignment: a maximum-similarity matching, each sentence taking at most one image.

MMC4 (scripts/compute_assignments.py, paper section 3) solves `-sim` with lapjv after padding it to a square with a
constant dummy cost (1000), keeps the real pairs, and when there are more images than sentences gives each image
left out its most similar sentence. Images the caller filtered out (CLIP similarity < 0.15 to every sentence) never
reach this module.

Why SciPy's rectangular `linear_sum_assignment` gives the same pairs as the padded square: every complete assignment
of the square uses exactly |n_images - n_sentences| dummy cells, all of the same cost, so the padded total is the
real total plus a constant. Its optimum is therefore an optimal matching of size min(n_images, n_sentences) on the
real rows and columns, which is exactly what the rectangular solver returns (the padding value never matters).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def assign_images(sim: np.ndarray) -> np.ndarray:
    """Sentence index (int64) per image for an `(n_images, n_sentences)` similarity matrix, MMC4's rule.

    The matched images form a one-to-one set of maximum total similarity; with more images than sentences the
    rest take their argmax sentence (first on ties). No images gives an empty array; images without sentences
    raise ValueError.
    """
    sim = np.asarray(sim)
    if sim.ndim != 2:
        raise ValueError(f"similarity matrix must be 2-D (images x sentences), got shape {sim.shape}")
    n_images, n_sentences = sim.shape
    if n_images == 0:
        return np.empty(0, dtype=np.int64)
    if n_sentences == 0:
        raise ValueError(f"{n_images} image(s) but no sentence to assign them to")
    if not np.isfinite(sim).all():
        raise ValueError("similarity matrix contains NaN or infinite values")
    rows, cols = linear_sum_assignment(sim, maximize=True)
    assignment = np.argmax(sim, axis=1).astype(np.int64)  # the leftover rule; overwritten for matched rows
    assignment[rows] = cols
    return assignment


def matched_sims(sim: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """Similarity of each image to its assigned sentence (MMC4's `matched_sim`)."""
    sim, assignment = np.asarray(sim), np.asarray(assignment, dtype=np.int64)
    if assignment.shape != (sim.shape[0],):
        raise ValueError(f"assignment has shape {assignment.shape}, expected ({sim.shape[0]},) for sim {sim.shape}")
    return sim[np.arange(sim.shape[0]), assignment]
