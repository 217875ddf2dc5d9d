"""`tessera ingest --source mmc4|obelics`: documents into canonical rows, their images through the pair pipeline.

One partition of documents writes, under `OUT/documents/`:
- `<p>.parquet` the accepted documents (DOC_SCHEMA) and `<p>.rejects.parquet` the rejected ones (reason, detail);
- `<p>.images.parquet` every distinct image URL once (first occurrence order): the metadata the image half of the
  partition is prepared from, exactly like a pair source (`OUT/prepared`, `OUT/rejects`, shard ids, img2dataset,
  verified shards). A URL an earlier partition already downloaded is not fetched again: documents link to its key.
- `<p>.json` the document manifest (written after the three files: it marks the parse step done);
- after the download, `<p>.image_outcomes.parquet` (one row per image occurrence: downloaded with its sample key,
  failed with the fetch reason, or rejected) and `<p>.doc_outcomes.parquet` (one row per input document: kept,
  dropped `no_image_downloaded`, or rejected with its reason). Rewritten from the shards on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pipelines.core.errors import TesseraUserError
from pipelines.core.locks import partition_lock
from pipelines.core.partitions import open_partition, reuse_or_prepare
from pipelines.core.partitions_store import ManifestStore, PartitionManifest, SourceManifest
from pipelines.core.rejects import REJECT_SCHEMA, Reject
from pipelines.core.shard_io import atomic_path
from pipelines.core.shards import complete_shards
from pipelines.core.sql import connect, literal, path_list, sql_text
from pipelines.documents import schema as D
from pipelines.documents.sources import check_document_files, read_documents
from pipelines.ingest.image_downloader import DownloadConfig
from pipelines.ingest.metadata_preparer import MetadataPreparer
from pipelines.ingest.sequence import download_partition

IMAGE_TABLE_SCHEMA = pa.schema([("url", pa.string()), ("caption", pa.string()), ("original_width", pa.int64()),
                                ("original_height", pa.int64()), (D.DOC_ID, pa.string()), ("item", pa.int32())])
BATCH = 4096


class DocumentManifest(SourceManifest):
    """What one document partition read: documents accepted and rejected, image occurrences, distinct URLs. Its
    shard ids are those of its image half, a pair partition of the same name (`OUT/partitions/<p>.json`)."""

    input_documents: int
    accepted: int
    rejected: int
    image_occurrences: int
    distinct_urls: int


def doc_file(out: Path, name: str, kind: str = "") -> Path:
    """`OUT/documents/<name>[.<kind>].parquet` (kind: rejects, images, image_outcomes, doc_outcomes)."""
    return Path(out) / D.DOCS_DIR / (f"{name}.{kind}.parquet" if kind else f"{name}.parquet")


DOCUMENT_PARTITIONS = ManifestStore(D.DOCS_DIR, DocumentManifest)


def _size(meta: str | None, key: str) -> int | None:
    if not meta:
        return None
    value = json.loads(meta).get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _caption(items: list[dict], index: int) -> str:
    """A caption for img2dataset's `.txt`: the image's alt text, else the text item that follows it."""
    meta = items[index]["meta"]
    alt = json.loads(meta).get("alt_text") if meta else None
    if isinstance(alt, str) and alt.strip():
        return alt
    return next((i["text"] for i in items[index + 1:] if i["type"] == D.TEXT), "")


def _parse(source: str, files: list[Path], out: Path, name: str) -> DocumentManifest:
    """Read every document once, streaming the accepted ones, the rejects and the distinct image URLs to parquet."""
    docs, rejects, images = (doc_file(out, name, k) for k in ("", "rejects", "images"))
    docs.parent.mkdir(parents=True, exist_ok=True)
    urls: dict[str, dict] = {}
    counts = {"accepted": 0, "rejected": 0, "image_occurrences": 0}
    with atomic_path(docs) as doc_tmp, atomic_path(rejects) as rej_tmp:
        with pq.ParquetWriter(doc_tmp, D.DOC_SCHEMA) as doc_w, pq.ParquetWriter(rej_tmp, REJECT_SCHEMA) as rej_w:
            doc_batch, rej_batch = [], []
            for record in read_documents(source, files, name):
                if isinstance(record, Reject):
                    rej_batch.append(record.__dict__)
                    counts["rejected"] += 1
                else:
                    doc_batch.append(record)
                    counts["accepted"] += 1
                    for i, item in enumerate(record[D.ITEMS]):
                        if item["type"] != D.IMAGE:
                            continue
                        counts["image_occurrences"] += 1
                        if item["url"] and item["url"] not in urls:
                            urls[item["url"]] = {
                                "url": item["url"], "caption": _caption(record[D.ITEMS], i),
                                "original_width": _size(item["meta"], "original_width"),
                                "original_height": _size(item["meta"], "original_height"),
                                D.DOC_ID: record[D.DOC_ID], "item": i,
                            }
                if len(doc_batch) >= BATCH:
                    doc_w.write_table(pa.Table.from_pylist(doc_batch, D.DOC_SCHEMA))
                    doc_batch = []
                if len(rej_batch) >= BATCH:
                    rej_w.write_table(pa.Table.from_pylist(rej_batch, REJECT_SCHEMA))
                    rej_batch = []
            doc_w.write_table(pa.Table.from_pylist(doc_batch, D.DOC_SCHEMA))
            rej_w.write_table(pa.Table.from_pylist(rej_batch, REJECT_SCHEMA))
    with atomic_path(images) as tmp:
        pq.write_table(pa.Table.from_pylist(list(urls.values()), IMAGE_TABLE_SCHEMA), tmp)
    return DocumentManifest(name=name, source=source, files=[str(Path(f).resolve()) for f in files],
                            input_documents=counts["accepted"] + counts["rejected"], distinct_urls=len(urls), **counts)


def prepare_documents(source: str, files: list[Path], out: Path, *, partition: str | None = None,
                      samples_per_shard: int = 10_000, wait: bool = False
                      ) -> tuple[DocumentManifest, PartitionManifest]:
    """Parse the documents (reused if done before) and prepare their distinct image URLs as a partition."""
    if samples_per_shard < 1:
        raise TesseraUserError(f"--samples-per-shard must be at least 1 (got {samples_per_shard})")
    files = [Path(f) for f in files]
    check_document_files(source, files)
    with open_partition(out, files, partition=partition, wait=wait) as (out, name):
        # the parse reads no other partition and owns no shard ids: partition lock only
        manifest = reuse_or_prepare(DOCUMENT_PARTITIONS, out, name, files=files, source=source, reads_folder=False,
                                    classify=lambda out, name: _parse(source, files, out, name))
        images = MetadataPreparer(out, samples_per_shard).prepare(source, [doc_file(out, name, "images")], name,
                                                                  check_folder=True)
    return manifest, images


def link_documents(out: Path, name: str) -> dict:
    """Write the image and document outcome ledgers of partition `name` from the finished shards; return counts."""
    out = Path(out)
    con = connect()
    shards = complete_shards(out)
    sidecars = (f"SELECT url, key, status, error_message, width, height, original_width, original_height "
                f"FROM read_parquet({path_list([s.parquet for s in shards])}, union_by_name=true)"
                if shards else
                "SELECT NULL::VARCHAR url, NULL::VARCHAR key, NULL::VARCHAR status, NULL::VARCHAR error_message, "
                "NULL::BIGINT width, NULL::BIGINT height, NULL::BIGINT original_width, NULL::BIGINT original_height "
                "WHERE false")
    rejects = out / "rejects" / f"{name}.parquet"
    con.execute(f"CREATE VIEW docs AS SELECT * FROM read_parquet({literal(doc_file(out, name))})")
    con.execute(f"CREATE VIEW doc_rejects AS SELECT * FROM read_parquet({literal(doc_file(out, name, 'rejects'))})")
    con.execute(f"CREATE VIEW sidecars AS {sidecars}")
    con.execute(f"CREATE VIEW url_rejects AS SELECT url, reason FROM read_parquet({literal(rejects)})"
                if rejects.exists() else "CREATE VIEW url_rejects AS SELECT NULL::VARCHAR url, NULL::VARCHAR reason "
                "WHERE false")
    con.execute(sql_text("documents_link"))
    for table, kind in (("image_outcomes", "image_outcomes"), ("doc_outcomes", "doc_outcomes")):
        with atomic_path(doc_file(out, name, kind)) as tmp:
            con.execute(f"COPY {table} TO {literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    rows = con.execute("SELECT outcome, count(*) FROM doc_outcomes GROUP BY ALL").fetchall()
    images = con.execute("SELECT outcome, count(*) FROM image_outcomes GROUP BY ALL").fetchall()
    return {"documents": dict(rows), "images": dict(images)}


def ingest_documents(source: str, files: list[Path], out: Path, *, partition: str | None = None,
                     download: DownloadConfig | None = None, samples_per_shard: int = 10_000, wait: bool = False,
                     progress: bool = True) -> tuple[DocumentManifest, PartitionManifest, dict]:
    """Parse, download the images, link documents to sample keys; rerunning resumes and never duplicates."""
    manifest, images = prepare_documents(source, files, out, partition=partition,
                                         samples_per_shard=samples_per_shard, wait=wait)
    download_partition(out, images, download, wait=wait, progress=progress)
    with partition_lock(Path(out), manifest.name, wait=True):
        counts = link_documents(out, manifest.name)
    return manifest, images, counts
