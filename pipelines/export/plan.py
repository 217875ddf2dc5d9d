"""The export's sampling plan from per-shard summaries: counts per source and a digest, never the pool's keys.

Pass 1 summarises each input shard from its own sidecar, curated file and caption parts: how many eligible samples
of each source it holds, how many were caption-dropped, and a digest of its eligible keys and captions. The plan
picks, per source, which global positions (shard order, then sidecar order) to keep with the very draws that
`random.Random.sample` makes over that source's samples (so the export is the one the pool-wide plan made), held
as one byte per eligible sample. Pass 2 turns a shard's slice of that mask back into its keys.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

import numpy as np

from pipelines.caption.samples import NO_CAPTIONS, CaptionParts, ShardCaptions, shard_inputs
from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_reader import check_curated_keys
from pipelines.core.shards import ShardPaths, read_sidecar

Shard = tuple[int, ShardPaths]  # (index of the SRC folder, shard); curation and captions apply to folder 0 only


@dataclass
class ShardSummary:
    """One input shard: eligible samples per source (in sidecar order), caption-dropped count, and a digest."""

    counts: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    digest: str = ""


def shard_eligible(shard: Shard, captions: CaptionParts, curate_out) -> tuple[dict[str, list[str]], int,
                                                                            ShardCaptions]:
    """source -> keys of one shard's downloaded, curated samples not caption-dropped (sidecar order), the number
    caption-dropped, and the shard's captions; from its sidecar and its own curated/caption files only."""
    idx, paths = shard
    own, curated = shard_inputs(paths, captions, curate_out) if idx == 0 else (NO_CAPTIONS, None)
    side = read_sidecar(paths, columns=[S.KEY, S.STATUS, S.SOURCE])
    by_source: dict[str, list[str]] = {}
    dropped, downloaded = 0, set()
    for key, status, source in zip(*(side[c].to_pylist() for c in (S.KEY, S.STATUS, S.SOURCE))):
        key = str(key)
        if status != S.STATUS_SUCCESS:
            continue
        downloaded.add(key)
        if curated is not None and key not in curated:
            continue
        if key in own.dropped:
            dropped += 1
            continue
        by_source.setdefault(source or "unknown", []).append(key)
    if curated:
        check_curated_keys(curated, downloaded, paths)
    return by_source, dropped, own


def summarise(shard: Shard, captions: CaptionParts, curate_out) -> ShardSummary:
    """Pass 1 for one shard: what the plan and the fingerprint need of it."""
    by_source, dropped, own = shard_eligible(shard, captions, curate_out)
    digest = hashlib.sha256()
    for source in sorted(by_source):
        for key in by_source[source]:
            digest.update(f"{source}\0{key}\0{own.final.get(key, '')}\0".encode())
    return ShardSummary({s: len(k) for s, k in by_source.items()}, dropped, digest.hexdigest())


def sample_mask(rng: random.Random, n: int, k: int) -> np.ndarray:
    """Which of n positions `rng.sample(range(n), k)` picks (same draws, same generator state after), as n bools.

    CPython's algorithm, kept as a mask instead of k objects: a partial Fisher-Yates over an n-array when that is
    smaller than a k-set, else rejection draws against what was already picked (tests compare it with `sample`)."""
    if not 0 <= k <= n:
        raise ValueError("Sample larger than population or is negative")
    randbelow = rng._randbelow
    setsize = 21
    if k > 5:
        setsize += 4 ** math.ceil(math.log(k * 3, 4))
    mask = np.zeros(n, dtype=bool)
    if n <= setsize:
        pool = np.arange(n, dtype=np.uint32 if n < 2**32 else np.int64)
        for i in range(k):
            j = randbelow(n - i)
            mask[pool[j]] = True
            pool[j] = pool[n - i - 1]
    else:
        for _ in range(k):
            j = randbelow(n)
            while mask[j]:
                j = randbelow(n)
            mask[j] = True
    return mask


def available(summaries: list[ShardSummary]) -> dict[str, int]:
    """Eligible samples per source over the export, sources in order of first appearance."""
    totals: dict[str, int] = {}
    for summary in summaries:
        for source, n in summary.counts.items():
            totals[source] = totals.get(source, 0) + n
    return totals


def plan(totals: dict[str, int], weights: dict[str, float] | None, seed: int) -> dict[str, np.ndarray | None]:
    """Per source, the mask of its eligible samples that the mix keeps (None: all of them), exact up to rounding."""
    if weights is None:
        return {s: None for s in totals}
    missing = [s for s in weights if not totals.get(s)]
    if missing:
        raise TesseraUserError(f"--weights names sources with no samples: {', '.join(missing)} "
                               f"(found: {', '.join(sorted(totals)) or 'none'})")
    total = min(totals[s] / w for s, w in weights.items())
    rng = random.Random(seed)
    return {s: sample_mask(rng, totals[s], math.floor(w * total + 1e-9)) for s, w in weights.items()}


def chosen_counts(chosen: dict[str, np.ndarray | None], totals: dict[str, int]) -> dict[str, int]:
    """How many samples each source contributes."""
    return {s: totals[s] if m is None else int(m.sum()) for s, m in chosen.items()}


def offsets(summaries: list[ShardSummary], source: str) -> list[int]:
    """Global position of each shard's first eligible sample of `source`."""
    starts, at = [], 0
    for summary in summaries:
        starts.append(at)
        at += summary.counts.get(source, 0)
    return starts
