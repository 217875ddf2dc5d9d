"""The outputs of document selection: the document, image and text ledgers, the curated image keys, the selection
(each kept document's final items) and the summary."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa

from pipelines.core.shard_io import write_json_atomic, write_parquet_atomic
from pipelines.documents import schema as D

DOC_LEDGER = pa.schema([(D.DOC_ID, pa.string()), ("input_file", pa.string()), ("input_row", pa.int64()),
                        ("outcome", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
                        ("value", pa.float64()), ("duplicate_of", pa.string()), ("n_images", pa.int32()),
                        ("n_texts", pa.int32())])
IMAGE_LEDGER = pa.schema([(D.DOC_ID, pa.string()), ("item", pa.int32()), ("url", pa.string()), ("key", pa.string()),
                          ("outcome", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
                          ("value", pa.float64()), ("sim", pa.float32())])
TEXT_LEDGER = pa.schema([(D.DOC_ID, pa.string()), ("item", pa.int32()), ("paragraph", pa.int32()),
                         ("reason", pa.string()), ("value", pa.float64())])
SKIPPED, OTHER_SOURCE = "skipped", "source_not_in_preset"  # documents of another source than the preset's


def write_selection(ingest_out, out, docs, ingest_only, selected, presets, min_sim) -> dict:
    """Write the ledgers (every document and image occurrence once), curated keys, selection and summary."""
    out = Path(out)
    kept_ids = {d.id for d, _ in selected}
    doc_rows, image_rows, text_rows = [], [], []
    for o in ingest_only:
        if o[D.DOC_ID] is None or o["outcome"] == D.REJECTED:
            doc_rows.append({D.DOC_ID: o[D.DOC_ID], "input_file": o["input_file"], "input_row": o["input_row"],
                             "outcome": o["outcome"], "stage": "ingest", "reason": o["reason"]})
    for d in docs:
        at_ingest = d.ingest["outcome"] != D.KEPT
        if d.skipped:
            doc_rows.append({D.DOC_ID: d.id, "input_file": d.row["input_file"], "input_row": d.row["input_row"],
                             "outcome": SKIPPED, "stage": "curate", "reason": OTHER_SOURCE,
                             "n_images": len(d.images), "n_texts": len(d.texts)})
            image_rows += [{D.DOC_ID: d.id, "item": item, "url": im["url"], "key": im["key"], "outcome": SKIPPED,
                            "stage": "curate", "reason": OTHER_SOURCE} for item, im in sorted(d.images.items())]
            continue
        if at_ingest:
            doc_rows.append({D.DOC_ID: d.id, "input_file": d.row["input_file"], "input_row": d.row["input_row"],
                             "outcome": D.DROPPED, "stage": "ingest", "reason": d.ingest["reason"],
                             "n_images": len(d.images), "n_texts": len(d.texts)})
        else:
            reason, value, dup = d.reason or (None, None, None)
            doc_rows.append({D.DOC_ID: d.id, "input_file": d.row["input_file"], "input_row": d.row["input_row"],
                             "outcome": D.KEPT if d.id in kept_ids else D.DROPPED,
                             "stage": None if d.id in kept_ids else "curate", "reason": reason, "value": value,
                             "duplicate_of": dup, "n_images": len(d.kept_images()), "n_texts": len(d.kept_texts())})
        for item, im in sorted(d.images.items()):
            if at_ingest or im["outcome"] != D.DOWNLOADED:
                row = {"outcome": D.DROPPED, "stage": "ingest", "reason": im["reason"] or im["outcome"]}
            elif im["drop"] is not None:
                row = {"outcome": D.DROPPED, "stage": "curate", "reason": im["drop"], "value": im["value"]}
            elif d.id not in kept_ids:
                row = {"outcome": D.DROPPED, "stage": "curate", "reason": "document_dropped"}
            else:
                row = {"outcome": D.KEPT, "stage": None, "reason": None}
            sims = im["sims"]
            best = max(sims) if sims else None
            image_rows.append({D.DOC_ID: d.id, "item": item, "url": im["url"], "key": im["key"],
                               "sim": im["sim"] if im["sim"] is not None else best, **row})
        text_rows += [{D.DOC_ID: d.id, "item": i, "paragraph": p, "reason": r, "value": v}
                      for i, p, r, v in d.dropped_paragraphs]
        text_rows += [{D.DOC_ID: d.id, "item": i, "reason": r, "value": v} for i, (r, v) in d.dropped_texts.items()]
    write_parquet_atomic(pa.Table.from_pylist(doc_rows, DOC_LEDGER), out / "doc_ledger.parquet")
    write_parquet_atomic(pa.Table.from_pylist(image_rows, IMAGE_LEDGER), out / "image_ledger.parquet")
    write_parquet_atomic(pa.Table.from_pylist(text_rows, TEXT_LEDGER), out / "text_ledger.parquet")
    keys = sorted({it["key"] for _, final in selected for it in final if it["type"] == D.IMAGE})
    write_parquet_atomic(pa.table({"key": pa.array(keys, pa.string())}), out / "curated" / "document_images.parquet")
    selection = [{D.DOC_ID: d.id, "source": d.row["source"], "url": d.row["url"],
                  "items": json.dumps(final, ensure_ascii=False)} for d, final in selected]
    write_parquet_atomic(pa.Table.from_pylist(selection, pa.schema([(D.DOC_ID, pa.string()), ("source", pa.string()),
                                                                   ("url", pa.string()), ("items", pa.string())])),
                         out / "selection.parquet")
    docs_by = Counter((r["outcome"], r["reason"]) for r in doc_rows)
    images_by = Counter((r["outcome"], r["reason"]) for r in image_rows)
    summary = {
        "preset": ",".join(p.name for p in presets), "min_sim": min_sim, "ingest_out": str(Path(ingest_out).resolve()),
        "documents": len(doc_rows), "kept": len(selected), "images": len(image_rows), "images_kept": len(keys),
        "image_occurrences_kept": sum(r["outcome"] == D.KEPT for r in image_rows),
        "documents_by_outcome": [{"outcome": o, "reason": r, "n": n} for (o, r), n in sorted(
            docs_by.items(), key=lambda x: (x[0][0], -x[1]))],
        "images_by_outcome": [{"outcome": o, "reason": r, "n": n} for (o, r), n in sorted(
            images_by.items(), key=lambda x: (x[0][0], -x[1]))],
        "texts_dropped": dict(Counter(r["reason"] for r in text_rows)),
    }
    write_json_atomic(summary, out / "documents_summary.json")
    return summary
