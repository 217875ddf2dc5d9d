"""`tessera fl-partition`: CreamFL's client mix over an ingest folder's kept samples, reproducible from one seed.

Order of work (each step seeded from `seed`): a uniform public image-text sample first (CreamFL: 50,000 MS-COCO pairs),
then the rest cut uniformly into an image, a text and an image-text pool; image and text pools split among their
clients by flwr-datasets' `DirichletPartitioner` (CreamFL's "hetero" split with its balancing), the image-text pool
by `ShardPartitioner` (CreamFL's Flickr30K shard scheme, leftovers to the last client). See docs/creamfl.md.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_json_atomic, write_parquet_atomic
from pipelines.fl.labels import assign_labels, sidecar_columns
from pipelines.fl.samples import CLIENT, LABEL, MODALITY, SHARD, kept_samples
from pipelines.fl.stats import client_stats, label_histogram

CLIENTS_DIR = "clients"
PUBLIC_FILE = "public.parquet"
MANIFEST_FILE = "manifest.json"
PUBLIC_ID = "public"
# client type -> modality the client may use; the id prefix is the type.
MODALITIES = {"img": "image", "txt": "text", "mm": "image_text"}
# CreamFL's three client datasets: CIFAR-100 train, AG_NEWS train, Flickr30K train pairs (`--pool-split creamfl`).
CREAMFL_POOL_SIZES = {"img": 50_000, "txt": 120_000, "mm": 145_000}
FORMAT_VERSION = 1


class FlPartitionConfig(BaseModel):
    """Settings of one partition; defaults are CreamFL's (src/main.py, algorithms/MMFL.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    img_clients: int = Field(10, ge=0)
    txt_clients: int = Field(10, ge=0)
    mm_clients: int = Field(15, ge=0)
    public: int = Field(50_000, ge=0)
    public_max_fraction: float = Field(0.5, ge=0.0, le=1.0)
    alpha: float = Field(0.1, gt=0.0)
    shards_per_client: int = Field(10, ge=1)
    label_column: str = "auto"
    num_labels: int = Field(20, ge=1)
    min_partition_size: int = Field(10, ge=0)
    pool_split: Literal["clients", "creamfl"] = "clients"
    seed: int = Field(0, ge=0)

    def clients(self, kind: str) -> int:
        return {"img": self.img_clients, "txt": self.txt_clients, "mm": self.mm_clients}[kind]


def pool_sizes(n: int, cfg: FlPartitionConfig) -> dict[str, int]:
    """Split `n` samples among the client types with clients, by weight (largest remainder, ties in type order)."""
    weights = {k: (cfg.clients(k) if cfg.pool_split == "clients" else CREAMFL_POOL_SIZES[k]) * (cfg.clients(k) > 0)
               for k in MODALITIES}
    total = sum(weights.values())
    if total == 0:
        return {k: 0 for k in MODALITIES}
    exact = {k: n * w / total for k, w in weights.items()}
    sizes = {k: int(v) for k, v in exact.items()}
    for k in sorted(MODALITIES, key=lambda k: -(exact[k] - sizes[k]))[: n - sum(sizes.values())]:
        sizes[k] += 1
    return sizes


def _dataset(pool: np.ndarray, labels: np.ndarray):
    import datasets

    return datasets.Dataset.from_dict({"row": pool.tolist(), LABEL: labels[pool].tolist()})


def dirichlet_split(pool: np.ndarray, labels: np.ndarray, n: int, cfg: FlPartitionConfig, seed: int,
                    what: str) -> list[np.ndarray]:
    """Rows of each of `n` clients: flwr-datasets' DirichletPartitioner with CreamFL's self-balancing."""
    from flwr_datasets.partitioner import DirichletPartitioner

    if len(pool) < n * max(1, cfg.min_partition_size):
        raise TesseraUserError(f"the {what} pool has {len(pool)} samples, too few for {n} clients of at least "
                               f"{max(1, cfg.min_partition_size)} (--min-partition-size); use fewer clients")
    part = DirichletPartitioner(num_partitions=n, partition_by=LABEL, alpha=cfg.alpha,
                                min_partition_size=cfg.min_partition_size, self_balancing=True, shuffle=False,
                                seed=seed)
    part.dataset = _dataset(pool, labels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # flwr warns on each resample; a failure raises below
            return [np.asarray(part.load_partition(i)["row"], dtype=np.int64) for i in range(n)]
    except ValueError as err:
        raise TesseraUserError(f"the {what} Dirichlet split failed ({err}); raise --alpha, lower "
                               "--min-partition-size or use fewer clients") from err


def shard_split(pool: np.ndarray, labels: np.ndarray, n: int, cfg: FlPartitionConfig, seed: int) -> list[np.ndarray]:
    """Rows of each of `n` image-text clients: ShardPartitioner (label-sorted shards, `shards_per_client` random
    shards each); samples beyond the whole shards go to the last client, as CreamFL's Flickr30K split does."""
    from flwr_datasets.partitioner import ShardPartitioner

    if len(pool) < n * cfg.shards_per_client:
        raise TesseraUserError(f"the image-text pool has {len(pool)} samples, too few for {n} clients x "
                               f"{cfg.shards_per_client} shards (--shards-per-client); use fewer")
    part = ShardPartitioner(num_partitions=n, partition_by=LABEL, num_shards_per_partition=cfg.shards_per_client,
                            shuffle=False, seed=seed)
    part.dataset = _dataset(pool, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # datasets' sort passes a pyarrow option deprecated in 25
        rows = [np.asarray(part.load_partition(i)["row"], dtype=np.int64) for i in range(n)]
    leftover = np.setdiff1d(pool, np.concatenate(rows))
    rows[-1] = np.concatenate([rows[-1], leftover])
    return rows


def split(labels: np.ndarray, cfg: FlPartitionConfig) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """(public rows, client id -> rows, pool info) over rows 0..len(labels)-1; every row lands in exactly one."""
    n = len(labels)
    rng = np.random.default_rng(cfg.seed)
    seeds = dict(zip(MODALITIES, np.random.SeedSequence(cfg.seed).generate_state(len(MODALITIES)).tolist()))
    n_public = min(cfg.public, int(n * cfg.public_max_fraction))
    order = rng.permutation(n)
    public = np.sort(order[:n_public])
    sizes = pool_sizes(n - n_public, cfg)
    bounds = np.cumsum([n_public] + [sizes[k] for k in MODALITIES])
    clients: dict[str, np.ndarray] = {}
    for (kind, modality), lo, hi in zip(MODALITIES.items(), bounds[:-1], bounds[1:]):
        k = cfg.clients(kind)
        if k == 0:
            continue
        pool = np.sort(order[lo:hi])
        if kind == "mm":
            parts = shard_split(pool, labels, k, cfg, seeds[kind])
        else:
            parts = dirichlet_split(pool, labels, k, cfg, seeds[kind], modality)
        clients.update({f"{kind}_{i}": np.sort(p) for i, p in enumerate(parts)})
    check_cover(n, public, clients)
    info = {"public_requested": cfg.public, "public": n_public, "pools": {MODALITIES[k]: v for k, v in sizes.items()},
            "partitioner_seeds": {MODALITIES[k]: v for k, v in seeds.items()}}
    return public, clients, info


def check_cover(n: int, public: np.ndarray, clients: dict[str, np.ndarray]) -> None:
    """Every row 0..n-1 in exactly one of the public set and the clients, or an error (a bug of ours)."""
    counts = np.bincount(np.concatenate([public, *clients.values()]).astype(np.int64), minlength=n)
    if len(counts) != n or not (counts == 1).all():
        raise RuntimeError(f"partition is not exact: {int((counts == 0).sum())} samples unassigned, "
                           f"{int((counts > 1).sum())} assigned twice")


def _client_table(table: pa.Table, rows: np.ndarray, labels: np.ndarray, cid: str, modality: str) -> pa.Table:
    t = table.take(pa.array(rows)).select([S.KEY, SHARD])
    n = t.num_rows
    return (t.append_column(LABEL, pa.array(labels[rows].tolist(), pa.string()))
            .append_column(MODALITY, pa.array([modality] * n, pa.string()))
            .append_column(CLIENT, pa.array([cid] * n, pa.string())))


def partition(ingest_out: Path, out: Path, cfg: FlPartitionConfig, curated: Path | None = None) -> dict:
    """Write OUT/clients/<id>.parquet, OUT/public.parquet and OUT/manifest.json (last); return the manifest."""
    if cfg.img_clients + cfg.txt_clients + cfg.mm_clients == 0:
        raise TesseraUserError("no clients requested: give --img-clients, --txt-clients or --mm-clients above 0")
    table, counts = kept_samples(ingest_out, curated, sidecar_columns(cfg.label_column))
    label_list, scheme = assign_labels(table, cfg.label_column, cfg.num_labels, cfg.seed, curated)
    labels = np.asarray(label_list, dtype=object)
    public, clients, info = split(labels, cfg)
    out = Path(out)
    wanted = {f"{cid}.parquet" for cid in clients}
    for stale in (out / CLIENTS_DIR).glob("*.parquet"):
        if stale.name not in wanted:
            stale.unlink()
    entries = []
    for cid, rows in clients.items():
        modality = MODALITIES[cid.split("_")[0]]
        t = _client_table(table, rows, labels, cid, modality)
        write_parquet_atomic(t, out / CLIENTS_DIR / f"{cid}.parquet")
        entries.append({"id": cid, "modality": modality, "file": f"{CLIENTS_DIR}/{cid}.parquet",
                        **client_stats(t, labels, _pool_rows(clients, cid))})
    pub = _client_table(table, public, labels, PUBLIC_ID, MODALITIES["mm"])
    write_parquet_atomic(pub, out / PUBLIC_FILE)
    manifest = {
        "format": FORMAT_VERSION,
        "creamfl": "FLAIR-THU/CreamFL@264252c",
        "settings": cfg.model_dump(),
        "seed": cfg.seed,
        "inputs": {"ingest": str(Path(ingest_out).resolve()),
                   "curated": str(Path(curated).resolve()) if curated else None, **counts},
        "label": {"requested": cfg.label_column, "scheme": scheme, "histogram": label_histogram(labels)},
        "split": info,
        "public": {"file": PUBLIC_FILE, **client_stats(pub, labels, np.arange(len(labels)))},
        "clients": entries,
    }
    write_json_atomic(manifest, out / MANIFEST_FILE)
    return manifest


def _pool_rows(clients: dict[str, np.ndarray], cid: str) -> np.ndarray:
    """All rows of the clients of `cid`'s type: the pool its label skew is measured against."""
    kind = cid.split("_")[0]
    return np.concatenate([r for c, r in clients.items() if c.split("_")[0] == kind])
