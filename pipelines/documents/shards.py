"""Document shards of a curation's selection: webdataset tars `OUT/documents/NNNNN.tar` (`<doc_id>.json` +
`<doc_id>.<i>.<ext>`), each verified before its marker; shards of an older selection are removed first."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_json_atomic
from pipelines.core.shard_job import ShardJob
from pipelines.documents import schema as D
from pipelines.documents.scores import image_bytes

SHARDS_DIR = "documents"


def write_document_shards(ingest_out: Path, out: Path, docs_per_shard: int = 1000) -> dict[str, dict]:
    """Webdataset tars of the selection, `docs_per_shard` documents each, resumable (marker after verification)."""
    out = Path(out)
    selection = pq.read_table(out / "selection.parquet").to_pylist()
    job = ShardJob(out, SHARDS_DIR)
    digest = hashlib.sha256(json.dumps([docs_per_shard, selection], sort_keys=True).encode()).hexdigest()
    stamp = out / SHARDS_DIR / "selection.sha256"
    if stamp.exists() and stamp.read_text().strip() != digest:
        # The selection changed (new partitions, another preset): shards of the old one must not survive.
        for old in (out / SHARDS_DIR).iterdir():
            if old.suffix in (".tar", ".json"):
                old.unlink()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")
    units = {f"{i // docs_per_shard:05d}": selection[i:i + docs_per_shard]
             for i in range(0, len(selection), docs_per_shard)}
    for unit in job.pending(units):
        docs = units[unit]
        with job.unit(unit) as writer:
            if writer is None:
                continue
            keys = {it["key"] for d in docs for it in json.loads(d["items"]) if it["type"] == D.IMAGE}
            data = image_bytes(ingest_out, keys)
            missing = keys - set(data)
            if missing:
                raise TesseraUserError(f"{len(missing)} curated images are not in {ingest_out}'s shards any more "
                                       f"(e.g. key {min(missing)}); was the ingest folder changed?")
            rel = f"{SHARDS_DIR}/{unit}.tar"
            n_images = 0
            with tarfile.open(writer.path(rel), "w") as tar:
                for d in docs:
                    items = json.loads(d["items"])
                    for n, it in enumerate(i for i in items if i["type"] == D.IMAGE):
                        it["image"] = n
                        _add(tar, f"{d[D.DOC_ID]}.{n}.{_ext(data[it['key']])}", data[it["key"]])
                        n_images += 1
                    doc = {D.DOC_ID: d[D.DOC_ID], "source": d["source"], "url": d["url"], "items": items}
                    _add(tar, f"{d[D.DOC_ID]}.json", json.dumps(doc, ensure_ascii=False).encode())
            writer.commit({"documents": len(docs), "images": n_images}, expect={rel: len(docs)})
    sizes = {f"{u}.tar": m["documents"] for u, m in job.finished().items()}
    write_json_atomic(sizes, out / SHARDS_DIR / "sizes.json")
    return job.finished()


def _ext(data: bytes) -> str:
    """The member extension of an encoded image (img2dataset's --encode-format)."""
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "jpg"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))
