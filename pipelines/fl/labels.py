"""Stand-in class labels for the Dirichlet split: Tessera's web samples carry none, CIFAR-100 and AG_NEWS do.

Schemes (`--label-column`):
- `clip_cluster`: seeded k-means (scipy `kmeans2`, k-means++ init) of the L2-normalised CLIP image embeddings that
  `tessera curate --with-embeddings` stored; the closest thing to a semantic class. Needs `--curated`.
- `source`: the metadata source the row came from (laion, coyo, ...): a real, cheap covariate.
- `caption_word`: the caption's first word that is not a stop word, hashed into `num_labels` buckets; a rough topic.
- any other sidecar column: its values as they are.
- `auto`: the first of clip_cluster, source (when it has two values or more), caption_word that applies.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.curate import columns as C
from pipelines.curate.scoring import SCORES_DIR

AUTO, CLIP_CLUSTER, SOURCE, CAPTION_WORD = "auto", "clip_cluster", "source", "caption_word"
SCHEMES = (AUTO, CLIP_CLUSTER, SOURCE, CAPTION_WORD)
NONE_LABEL = "(none)"
STOP_WORDS = frozenset(
    "a an the this that these those of on in at to for from with by and or is are was were be it its as "
    "photo photograph picture image illustration close up view my our your his her their".split())
_WORD = re.compile(r"[^\W\d_]+")


def sidecar_columns(scheme: str) -> tuple[str, ...]:
    """Sidecar columns `scheme` reads beyond key, caption and source."""
    return () if scheme in SCHEMES else (scheme,)


def assign_labels(table: pa.Table, scheme: str, num_labels: int, seed: int,
                  curated: Path | None) -> tuple[list[str], str]:
    """(one string label per row of `table`, the scheme used); `auto` picks the first scheme that applies."""
    if scheme == AUTO:
        if curated is not None and _embedding_refs(curated) is not None:
            scheme = CLIP_CLUSTER
        else:
            distinct = {v for v in table[S.SOURCE].to_pylist() if v is not None}
            scheme = SOURCE if len(distinct) >= 2 else CAPTION_WORD
    if scheme == CLIP_CLUSTER:
        return clip_cluster_labels(table[S.KEY].to_pylist(), curated, num_labels, seed), scheme
    if scheme == CAPTION_WORD:
        return [caption_word_label(c, num_labels) for c in table[S.CAPTION].to_pylist()], scheme
    return [NONE_LABEL if v is None else str(v) for v in table[scheme].to_pylist()], scheme


def caption_word_label(caption: str | None, num_labels: int) -> str:
    """The bucket of the caption's first non-stop word (a stable hash, not Python's salted `hash`)."""
    words = [w for w in _WORD.findall((caption or "").lower()) if w not in STOP_WORDS]
    if not words:
        return NONE_LABEL
    bucket = int.from_bytes(hashlib.blake2b(words[0].encode(), digest_size=8).digest(), "big") % num_labels
    return f"w{bucket:03d}"


def clip_cluster_labels(keys: list[str], curated: Path | None, num_labels: int, seed: int) -> list[str]:
    """k-means cluster ids of the samples' stored CLIP embeddings, seeded; every key needs an embedding."""
    from scipy.cluster.vq import kmeans2

    refs = _embedding_refs(curated) if curated is not None else None
    if refs is None:
        raise TesseraUserError("--label-column clip_cluster needs --curated with CLIP embeddings "
                               "(`tessera curate --with-embeddings`)")
    missing = [k for k in keys if k not in refs]
    if missing:
        raise TesseraUserError(f"--label-column clip_cluster: {len(missing)} kept samples have no stored "
                               f"embedding in {curated} (first: {missing[0]})")
    cache: dict[str, np.ndarray] = {}
    rows = []
    for k in keys:
        rel, _, row = refs[k].partition("#")
        if rel not in cache:
            cache[rel] = np.load(Path(curated) / rel)
        rows.append(cache[rel][int(row)])
    emb = np.asarray(rows, dtype=np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    k = max(1, min(num_labels, len(keys)))
    _, idx = kmeans2(emb, k, seed=np.random.default_rng(seed), minit="++")
    return [f"c{i:03d}" for i in idx.tolist()]


def _embedding_refs(curated: Path) -> dict[str, str] | None:
    """key -> `embeddings/NNNNN.npy#row` from the curation folder's scores, or None when none were stored."""
    refs: dict[str, str] = {}
    for f in sorted((Path(curated) / SCORES_DIR).glob("*.parquet")):
        if C.EMBEDDING_REF not in pq.read_schema(f).names:
            continue
        t = pq.read_table(f, columns=[S.KEY, C.EMBEDDING_REF])
        refs.update({str(k): r for k, r in zip(t[S.KEY].to_pylist(), t[C.EMBEDDING_REF].to_pylist()) if r})
    return refs or None
