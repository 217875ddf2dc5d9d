"""NearDuplicateFilter: near-duplicate images by perceptual hash (pHash Hamming distance <= max_distance)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.core.stage import Stage, StageConfig

REASON = "near_duplicate_image"


class NearDuplicateConfig(StageConfig):
    """Hamming-distance bound on 64-bit pHashes (0: identical hashes only)."""

    max_distance: int = Field(4, ge=0, le=16)
    hash_column: str = C.PHASH


def _bands(h: int, n_bands: int, bits: int = 64) -> list[tuple[int, int]]:
    """Split a hash into `n_bands` bit ranges: two hashes within distance d agree on one of d+1 bands."""
    edges = np.linspace(0, bits, n_bands + 1).astype(int)
    return [(b, (h >> int(lo)) & ((1 << int(hi - lo)) - 1)) for b, (lo, hi) in enumerate(zip(edges, edges[1:]))]


class NearDuplicateFilter(Stage):
    """Greedy in key order: a row within `max_distance` of an earlier kept row is marked `near_duplicate_image`
    with `duplicate_of` = the closest such row (value: the distance)."""

    config_cls: ClassVar[type[StageConfig]] = NearDuplicateConfig
    name: ClassVar[str] = "near_dedup"
    whole_pool: ClassVar[bool] = True

    def process(self, batch: pa.Table) -> pa.Table:
        cfg = self.config
        out = C.with_drop_columns(batch)
        if cfg.hash_column not in batch.column_names:
            return out
        keys = batch[S.KEY].to_pylist()
        hashes = batch[cfg.hash_column].to_pylist()
        order = sorted((i for i in np.flatnonzero(C.kept_mask(out)) if hashes[i]), key=lambda i: keys[i])
        buckets: dict[tuple[int, int], list[int]] = {}
        dup = np.zeros(batch.num_rows, dtype=bool)
        dist = np.full(batch.num_rows, np.nan)
        dup_of = np.full(batch.num_rows, None, dtype=object)
        ints = {i: int(hashes[i], 16) for i in order}
        for i in order:
            bands = _bands(ints[i], cfg.max_distance + 1)
            best = None
            for band in bands:
                for j in buckets.get(band, ()):
                    d = (ints[i] ^ ints[j]).bit_count()
                    if d <= cfg.max_distance and (best is None or (d, keys[j]) < best[:2]):
                        best = (d, keys[j], j)
            if best is None:
                for band in bands:
                    buckets.setdefault(band, []).append(i)
            else:
                dup[i], dist[i], dup_of[i] = True, best[0], best[1]
        return C.mark_drops(out, dup, self.name, REASON, dist, dup_of)

    def spark_apply(self, df):
        """The same decisions on Spark: band buckets, components, this greedy per component (spark_near_dup.py)."""
        from pipelines.curate.spark_near_dup import near_duplicate_marks

        return near_duplicate_marks(df, self)
