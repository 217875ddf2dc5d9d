"""Per-client statistics for the manifest and the table: size, shards touched, label histogram and label skew."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.fl.samples import LABEL, SHARD


def label_histogram(labels) -> dict[str, int]:
    """label -> count, sorted by label (JSON-stable)."""
    return dict(sorted(Counter(str(v) for v in labels).items()))


def total_variation(hist: dict[str, int], ref: dict[str, int]) -> float:
    """Total-variation distance between two label histograms (0 = same mix, 1 = disjoint labels)."""
    n, m = sum(hist.values()), sum(ref.values())
    if n == 0 or m == 0:
        return 0.0
    return 0.5 * sum(abs(hist.get(k, 0) / n - ref.get(k, 0) / m) for k in set(hist) | set(ref))


def client_stats(table: pa.Table, labels: np.ndarray, ref_rows: np.ndarray) -> dict:
    """Stats of one client's table against the label mix of `ref_rows` (its pool): the non-IIDness it got."""
    hist = label_histogram(table[LABEL].to_pylist())
    n = table.num_rows
    return {
        "samples": n,
        "ingest_shards": pc.count_distinct(table[SHARD]).as_py() if n else 0,
        "distinct_labels": len(hist),
        "top_label_share": round(max(hist.values()) / n, 4) if n else 0.0,
        "tv_to_pool": round(total_variation(hist, label_histogram(labels[ref_rows])), 4),
        "labels": hist,
    }
