"""Per-partition CLIP similarities for document curation: every downloaded image occurrence against every text item
of its document (`OUT/doc_scores/<partition>.parquet`, marker last, resumable). Images are read from the ingest
shards by sample key and embedded once per partition; texts are embedded in batches."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_job import ShardJob
from pipelines.core.shards import complete_shards
from pipelines.core.shard_reader import read_images
from pipelines.documents import schema as D
from pipelines.documents.ingest import DOCUMENT_PARTITIONS, doc_file

SCORES_DIR = "doc_scores"
SCORE_SCHEMA = pa.schema([(D.DOC_ID, pa.string()), ("item", pa.int32()), ("key", pa.string()),
                          ("sims", pa.list_(pa.float32())), ("error", pa.string())])


def linked_partitions(ingest_out: Path, sources: tuple[str, ...] | None = None) -> list[str]:
    """Document partitions of `ingest_out` (of `sources`, when given) whose outcomes are written."""
    linked = [m for m in DOCUMENT_PARTITIONS.load(ingest_out)
              if doc_file(ingest_out, m.name, "image_outcomes").exists()]
    if not linked:
        raise TesseraUserError(f"{ingest_out} holds no ingested documents (run `tessera ingest --source mmc4|obelics` "
                               "to the end first)")
    return [m.name for m in linked if sources is None or m.source in sources]


def image_bytes(ingest_out: Path, keys: set[str]) -> dict[str, bytes]:
    """Encoded images by sample key, read from the ingest shards that hold them."""
    found: dict[str, bytes] = {}
    for shard in complete_shards(ingest_out):
        if any(k.startswith(shard.shard_id) for k in keys):
            found.update((k, v) for k, v in read_images(shard.tar).items() if k in keys)
    return found


def score_partition(ingest_out: Path, name: str, scorer, batch_size: int) -> pa.Table:
    """CLIP similarity of each downloaded image occurrence of partition `name` to every text item of its document."""
    docs = {d[D.DOC_ID]: d[D.ITEMS] for d in pq.read_table(doc_file(ingest_out, name), columns=[D.DOC_ID, D.ITEMS])
            .to_pylist()}
    occ = [o for o in pq.read_table(doc_file(ingest_out, name, "image_outcomes"),
                                    columns=[D.DOC_ID, "item", "key"]).to_pylist() if o["key"]]
    keys = sorted({o["key"] for o in occ})
    data = image_bytes(ingest_out, set(keys))
    embedding, errors = {}, {}
    for start in range(0, len(keys), batch_size):
        chunk = keys[start:start + batch_size]
        pixels, errs = scorer.pil_batch([data.get(k, b"") for k in chunk])
        emb = scorer.embed_images(pixels).cpu().numpy()
        for k, e, err in zip(chunk, emb, errs):
            embedding[k], errors[k] = e, (err if k in data else "missing_in_tar")
    doc_ids = sorted({o[D.DOC_ID] for o in occ})
    texts = [(d, i, it["text"]) for d in doc_ids for i, it in enumerate(docs[d]) if it["type"] == D.TEXT]
    text_emb: dict[tuple[str, int], np.ndarray] = {}
    for start in range(0, len(texts), batch_size * 4):
        chunk = texts[start:start + batch_size * 4]
        emb = scorer.embed_texts([t for _, _, t in chunk]).cpu().numpy()
        text_emb.update(((d, i), e) for (d, i, _), e in zip(chunk, emb))
    rows = []
    for o in occ:
        doc_texts = [i for i, it in enumerate(docs[o[D.DOC_ID]]) if it["type"] == D.TEXT]
        t = np.stack([text_emb[(o[D.DOC_ID], i)] for i in doc_texts])
        sims = (t @ embedding[o["key"]]).clip(-1, 1).astype(np.float32)
        error = errors[o["key"]]
        rows.append({D.DOC_ID: o[D.DOC_ID], "item": o["item"], "key": o["key"],
                     "sims": None if error else sims.tolist(), "error": error})
    return pa.Table.from_pylist(rows, SCORE_SCHEMA)


def score_documents(ingest_out: Path, out: Path, clip_model: str, *, batch_size: int = 64, precision: str = "fp32",
                    sources: tuple[str, ...] | None = None, log=lambda s: None) -> dict[str, dict]:
    """Score every linked partition (of `sources`) not scored yet under `out`; returns partition -> marker."""
    from models.clip_scorer import ClipScorer

    job = ShardJob(out, SCORES_DIR)
    todo = job.pending(linked_partitions(ingest_out, sources))
    scorer = None
    for name in todo:
        with job.unit(name) as writer:
            if writer is None:
                continue
            scorer = scorer or ClipScorer(clip_model, precision=precision)
            recorded = {m.get("model") for m in job.finished().values()} - {scorer.model_id}
            if recorded:
                raise TesseraUserError(f"{out} holds document scores of {recorded.pop()}; use the same --clip-model "
                                       "or another --out")
            t0 = time.perf_counter()
            table = score_partition(ingest_out, name, scorer, batch_size)
            writer.parquet(table, f"{SCORES_DIR}/{name}.parquet")
            seconds = time.perf_counter() - t0
            writer.commit({"partition": name, "model": scorer.model_id, "images": table.num_rows,
                           "seconds": round(seconds, 3)},
                          expect={f"{SCORES_DIR}/{name}.parquet": table.num_rows})
            log(f"scored {table.num_rows} document images of partition {name} in {seconds:.1f} s")
    return job.finished()
