"""DataComp's exact top-fraction threshold without holding the pool's scores: per-shard fixed-bin histograms, merged,
name the bin that holds the k-th largest score; a second pass reads only that bin's scores from every shard.

`pool_threshold` (stages/clip_top_fraction_filter.py) stays the definition: the k-th largest non-NaN score of the
pool, k = ceil(fraction * n scored rows). The bin index is monotone in the score, so the k-th largest score lies in
the bin where the count from the top first reaches k, at rank k - (count of the bins above) inside it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow.parquet as pq

from pipelines.curate import columns as C

BINS = 4096  # over [-1, 1): about 0.0005 wide; bin 0 and BINS + 1 hold anything below -1 / from 1 up (and inf)
LOW, HIGH = -1.0, 1.0
HISTOGRAM = "score_histogram"  # the key of a scored shard's marker: {"bins": BINS, "counts": [[bin, count], ...]}


def score_bins(scores) -> np.ndarray:
    """The bin of every non-NaN score (NaN scores are dropped), in 0 .. BINS + 1."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[~np.isnan(s)]
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.floor((s - LOW) / (HIGH - LOW) * BINS)
    return (np.clip(np.nan_to_num(scaled, posinf=BINS, neginf=-1), -1, BINS) + 1).astype(np.int64)


def histogram(scores) -> dict:
    """A shard's score histogram as its marker stores it (sparse: only the bins that hold scores)."""
    bins, counts = np.unique(score_bins(scores), return_counts=True)
    return {"bins": BINS, "counts": [[int(b), int(c)] for b, c in zip(bins, counts)]}


def shard_scores(path: Path) -> np.ndarray:
    """The CLIP scores of one scores/NNNNN.parquet as float64 (NaN for nulls)."""
    table = pq.read_table(path, columns=[C.CLIP_SCORE])
    return C.column_or_nulls(table, C.CLIP_SCORE)


def merged_counts(histograms: Iterable[dict]) -> np.ndarray:
    """The per-bin counts of every shard's histogram added up."""
    total = np.zeros(BINS + 2, dtype=np.int64)
    for hist in histograms:
        if hist.get("bins") != BINS:
            raise ValueError(f"score histogram with {hist.get('bins')} bins, expected {BINS}")
        for b, c in hist["counts"]:
            total[b] += c
    return total


def threshold_bin(counts: np.ndarray, fraction: float) -> tuple[int, int, int] | None:
    """(bin holding the k-th largest score, its rank from the top inside that bin, n scored); None when nothing
    was scored."""
    n = int(counts.sum())
    if n == 0:
        return None
    k = max(1, math.ceil(fraction * n))
    from_top = np.cumsum(counts[::-1])
    top_index = int(np.searchsorted(from_top, k))  # first position where the count from the top reaches k
    b = len(counts) - 1 - top_index
    above = int(from_top[top_index - 1]) if top_index else 0
    return b, k - above, n


def exact_threshold(histograms: Iterable[dict], score_files: Iterable[Path], fraction: float) -> float:
    """`pool_threshold` over every shard's scores, from the merged `histograms` plus one pass over `score_files`
    that keeps only the scores in the threshold's bin."""
    found = threshold_bin(merged_counts(histograms), fraction)
    if found is None:
        return math.inf
    b, rank, _ = found
    in_bin = []
    for path in score_files:
        s = shard_scores(path)
        s = s[~np.isnan(s)]
        in_bin.append(s[score_bins(s) == b])
    values = np.sort(np.concatenate(in_bin))[::-1]
    return float(values[rank - 1])
