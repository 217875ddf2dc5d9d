"""`tessera curate INGEST_OUT --preset mmc4|mmc4_core|obelics[,...]`: document curation with the published rules.

Each preset curates the documents of its source (mmc4 and mmc4_core: MMC4; obelics: OBELICS); `--preset
mmc4,obelics` curates both in one pool. Documents of a source no given preset covers are recorded as `skipped`.

1. Scores (`scores.py`, per document partition, resumable): every downloaded image occurrence's open_clip cosine
   similarity to every text item of its document.
2. Selection (this module) (whole pool): image rules (size, aspect, URL words, URL frequency, in-document duplicates, relevance),
   text rules (paragraph words, spam ratio), MMC4 assignment of unplaced images to sentences (`assignment.py`),
   document limits (images, sentences, words, assignment similarity), then page-URL and image-set dedup.
   Every document of the ingest folder lands in `doc_ledger.parquet` exactly once (kept, dropped or rejected, with
   stage, reason, value) and every image occurrence of an accepted document in `image_ledger.parquet`.
3. Outputs: `curated/document_images.parquet` (the kept images' keys, for `tessera tokenize --curated`),
   `selection.parquet` (each kept document's final item list as JSON), and document shards (`shards.py`).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import write_json_atomic, write_parquet_atomic
from pipelines.documents import schema as D
from pipelines.documents.assignment import assign_images
from pipelines.documents.ingest import doc_file
from pipelines.documents.scores import SCORES_DIR, linked_partitions
from pipelines.documents.presets import SPAM_WORDS, DocumentPreset

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
WORD = re.compile(r"\w[\w'-]*", re.UNICODE)


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


# ------------------------------------------------------------------------------------------------ 2. selection
class _Doc:
    """One document while the rules run: its items, per-image state and the first reason that drops it."""

    def __init__(self, row: dict, outcome: dict, images: list[dict], sims: dict[int, dict]) -> None:
        self.id, self.row, self.ingest = row[D.DOC_ID], row, outcome
        self.items = row[D.ITEMS]
        self.texts = {i: it["text"] for i, it in enumerate(self.items) if it["type"] == D.TEXT}
        self.images = {o["item"]: dict(o, sims=sims.get(o["item"], {}).get("sims"),
                                       error=sims.get(o["item"], {}).get("error"), drop=None, value=None, sim=None)
                       for o in images}
        self.dropped_texts: dict[int, tuple[str, float]] = {}
        self.dropped_paragraphs: list[tuple[int, int, str, float]] = []
        self.reason: tuple[str, float | None, str | None] | None = None
        self.skipped = False  # another source than the preset's: recorded, not curated

    def kept_images(self) -> list[int]:
        return [i for i, im in self.images.items() if im["drop"] is None]

    def kept_texts(self) -> list[int]:
        return [i for i in self.texts if i not in self.dropped_texts]

    def drop_image(self, item: int, reason: str, value: float | None = None) -> None:
        if self.images[item]["drop"] is None:
            self.images[item].update(drop=reason, value=value)

    def drop(self, reason: str, value: float | None = None, duplicate_of: str | None = None) -> None:
        if self.reason is None:
            self.reason = (reason, value, duplicate_of)


def _image_rules(doc: _Doc, preset: DocumentPreset, url_documents: Counter, min_sim: float | None) -> None:
    seen: set[str] = set()
    source = doc.row["source"]
    for item, im in sorted(doc.images.items()):
        if im["outcome"] != D.DOWNLOADED:
            doc.drop_image(item, "not_downloaded")
            continue
        w, h = im["original_width"] or im["width"], im["original_height"] or im["height"]
        url = (im["url"] or "").lower()
        if im["error"]:
            doc.drop_image(item, "decode_error")
        elif im["key"] in seen:
            doc.drop_image(item, "duplicate_image_in_document")
        elif any(word in url for word in preset.url_blocklist):
            doc.drop_image(item, "image_url_pattern")
        elif preset.max_url_documents is not None and url_documents[source, im["key"]] > preset.max_url_documents:
            doc.drop_image(item, "image_url_too_frequent", url_documents[source, im["key"]])
        elif w and h and min(w, h) < preset.min_side:
            doc.drop_image(item, "image_too_small", min(w, h))
        elif w and h and preset.max_side is not None and max(w, h) > preset.max_side:
            doc.drop_image(item, "image_too_large", max(w, h))
        elif w and h and not preset.min_aspect <= w / h <= preset.max_aspect:
            doc.drop_image(item, "image_aspect_ratio", round(w / h, 4))
        elif preset.max_side is not None and _rendered_outside(doc.items[item]["meta"], preset) is not None:
            # OBELICS: the HTML width/height, checked only when present; the value is the side out of range
            doc.drop_image(item, "rendered_size", _rendered_outside(doc.items[item]["meta"], preset))
        seen.add(im["key"])
    texts = doc.kept_texts()
    if min_sim is None or not texts:
        return
    order = list(doc.texts)
    for item in doc.kept_images():
        best = max(doc.images[item]["sims"][order.index(t)] for t in texts)
        if best < min_sim:
            doc.drop_image(item, "low_clip_similarity", round(float(best), 6))


def _paragraph_reason(paragraph: str, preset: DocumentPreset) -> tuple[str, float] | None:
    words = _words(paragraph)
    if preset.paragraph_min_words is not None and len(words) < preset.paragraph_min_words:
        return "paragraph_too_short", len(words)
    if preset.paragraph_max_words is not None and len(words) > preset.paragraph_max_words:
        return "paragraph_too_long", len(words)
    if preset.max_spam_ratio is not None and words:
        ratio = sum(w in SPAM_WORDS for w in words) / len(words)
        if ratio >= preset.max_spam_ratio:
            return "spam_words", round(ratio, 4)
    return None


def _rendered_outside(meta: str | None, preset: DocumentPreset) -> float | None:
    """The first rendered side (OBELICS metadata) outside [min_side, max_side], or None."""
    sizes = [json.loads(meta).get(k) for k in ("rendered_width", "rendered_height")] if meta else []
    return next((float(v) for v in sizes if isinstance(v, (int, float)) and not isinstance(v, bool)
                 and not preset.min_side <= v <= preset.max_side), None)


def _text_rules(doc: _Doc, preset: DocumentPreset) -> None:
    """Empty texts go; with paragraph rules (OBELICS) each text is split on blank lines and failing paragraphs go."""
    paragraph_rules = preset.paragraph_min_words is not None or preset.max_spam_ratio is not None
    for item, text in list(doc.texts.items()):
        if not text.strip():
            doc.dropped_texts[item] = ("empty_text", 0)
            continue
        if not paragraph_rules:
            continue
        kept = []
        for n, paragraph in enumerate(text.split("\n\n")):
            reason = _paragraph_reason(paragraph, preset)
            if reason is None:
                kept.append(paragraph)
            else:
                doc.dropped_paragraphs.append((item, n, *reason))
        if kept:
            doc.texts[item] = "\n\n".join(kept)
        else:
            doc.dropped_texts[item] = ("no_paragraph_kept", 0)


def _place(doc: _Doc) -> list[dict]:
    """The document's final items: kept texts, kept images before their sentence (assigned when unplaced)."""
    order = list(doc.texts)
    texts = doc.kept_texts()
    images = doc.kept_images()
    unplaced = [i for i in images if not doc.items[i]["placed"]]
    before: dict[int, list[int]] = defaultdict(list)
    if unplaced:
        sim = np.array([[doc.images[i]["sims"][order.index(t)] for t in texts] for i in unplaced])
        for i, j in zip(unplaced, assign_images(sim)):
            before[texts[int(j)]].append(i)
            doc.images[i]["sim"] = float(sim[unplaced.index(i), int(j)])
    for i in images:
        if doc.items[i]["placed"]:
            nxt = next((t for t in texts if t > i), None)  # MMC4: the sentence the image was matched to follows it
            anchor = nxt if nxt is not None else texts[-1]
            doc.images[i]["sim"] = float(doc.images[i]["sims"][order.index(anchor)]) if doc.images[i]["sims"] else None
    final: list[dict] = []
    placed = {i for i in images if doc.items[i]["placed"]}
    for pos, it in enumerate(doc.items):
        if pos in placed:
            final.append({"type": D.IMAGE, "key": doc.images[pos]["key"], "url": it["url"],
                          "sim": doc.images[pos]["sim"]})
        elif pos in doc.texts and pos not in doc.dropped_texts:
            for i in before.get(pos, []):
                final.append({"type": D.IMAGE, "key": doc.images[i]["key"], "url": doc.items[i]["url"],
                              "sim": doc.images[i]["sim"]})
            final.append({"type": D.TEXT, "text": doc.texts[pos]})
    return final


def _document_rules(doc: _Doc, preset: DocumentPreset) -> None:
    texts, images = doc.kept_texts(), doc.kept_images()
    words = sum(len(_words(doc.texts[t])) for t in texts)
    if not texts:
        doc.drop("no_text_kept")
    elif not images:
        doc.drop("no_image_kept")
    elif len(images) < preset.min_images:
        doc.drop("too_few_images", len(images))
    elif preset.max_images is not None and len(images) > preset.max_images:
        doc.drop("too_many_images", len(images))
    elif preset.min_sentences is not None and len(texts) < preset.min_sentences:
        doc.drop("too_few_sentences", len(texts))
    elif preset.max_sentences is not None and len(texts) > preset.max_sentences:
        doc.drop("too_many_sentences", len(texts))
    elif preset.min_words is not None and words < preset.min_words:
        doc.drop("too_few_words", words)
    elif preset.max_words is not None and words > preset.max_words:
        doc.drop("too_many_words", words)


def _warc(doc: _Doc) -> str:
    extra = json.loads(doc.row[D.EXTRA] or "{}")
    return str((extra.get("general_metadata") or {}).get("warc_filename") or "")


def _dedup(docs: list[_Doc], presets: dict[str, DocumentPreset]) -> None:
    """Page-URL dedup (the latest WARC file wins, then input order) and, where the preset says so (OBELICS),
    identical image sets."""
    rank = {d.id: n for n, d in enumerate(docs)}
    live = [d for d in docs if d.reason is None]
    by_url: dict[str, list[_Doc]] = defaultdict(list)
    for d in live:
        if d.row["url"]:
            by_url[d.row["url"]].append(d)
    for group in by_url.values():
        winner = max(group, key=lambda d: (_warc(d), -rank[d.id]))
        for d in group:
            if d is not winner:
                d.drop("duplicate_document_url", duplicate_of=winner.id)
    by_set: dict[tuple, _Doc] = {}
    candidates = (d for d in live if d.reason is None and presets[d.row["source"]].dedup_image_sets)
    for d in sorted(candidates, key=lambda d: (_warc(d), -rank[d.id]), reverse=True):
        key = tuple(sorted(d.images[i]["key"] for i in d.kept_images()))
        if key in by_set:
            d.drop("duplicate_image_set", duplicate_of=by_set[key].id)
        else:
            by_set[key] = d


def _load(ingest_out: Path, out: Path, names: list[str], curated: set[str]) -> tuple[list[_Doc], list[dict]]:
    """Every document of the partitions; those of partitions not in `curated` (another source) are marked skipped."""
    docs, ingest_only = [], []
    for name in names:
        outcomes = pq.read_table(doc_file(ingest_out, name, "doc_outcomes")).to_pylist()
        images = defaultdict(list)
        for o in pq.read_table(doc_file(ingest_out, name, "image_outcomes")).to_pylist():
            images[o[D.DOC_ID]].append(o)
        sims = defaultdict(dict)
        if name in curated:
            for s in pq.read_table(Path(out) / SCORES_DIR / f"{name}.parquet").to_pylist():
                sims[s[D.DOC_ID]][s["item"]] = s
        rows = {r[D.DOC_ID]: r for r in pq.read_table(doc_file(ingest_out, name)).to_pylist()}
        for o in outcomes:
            if o["outcome"] == D.KEPT:
                docs.append(_Doc(rows[o[D.DOC_ID]], o, images[o[D.DOC_ID]], sims[o[D.DOC_ID]]))
                docs[-1].skipped = name not in curated
            else:
                ingest_only.append(o)
                if o[D.DOC_ID] in rows:  # dropped at ingest: its images still get a curation row
                    docs.append(_Doc(rows[o[D.DOC_ID]], o, images[o[D.DOC_ID]], {}))
    return docs, ingest_only


def presets_by_source(presets: list[DocumentPreset]) -> dict[str, DocumentPreset]:
    """source -> the preset that curates it; two presets for one source is a user error."""
    by_source: dict[str, DocumentPreset] = {}
    for preset in presets:
        for source in preset.sources:
            if source in by_source:
                raise TesseraUserError(f"presets {by_source[source].name} and {preset.name} both curate {source} "
                                       "documents; give one preset per source")
            by_source[source] = preset
    return by_source


def select_documents(ingest_out: Path, out: Path, presets: list[DocumentPreset], min_sim: float | None) -> dict:
    """Run every rule over the whole pool, each document under its source's preset (documents of a source no preset
    names are recorded as skipped); write the ledgers, curated keys and the selection; return the summary.

    min_sim: the relevance threshold for every preset (None: each preset's own)."""
    by_source = presets_by_source(presets)
    names = linked_partitions(ingest_out)
    docs, ingest_only = _load(ingest_out, out, names, set(linked_partitions(ingest_out, tuple(by_source))))
    # OBELICS step 06 counts every occurrence of an image URL across documents, here per source and per pool.
    url_documents = Counter((d.row["source"], im["key"]) for d in docs if d.ingest["outcome"] == D.KEPT
                            and not d.skipped for im in d.images.values() if im["key"])
    selected: list[tuple[_Doc, list[dict]]] = []
    for d in docs:
        if d.ingest["outcome"] != D.KEPT or d.skipped:
            continue
        preset = by_source[d.row["source"]]
        _text_rules(d, preset)
        _image_rules(d, preset, url_documents, preset.min_sim if min_sim is None else min_sim)
        _document_rules(d, preset)
    _dedup([d for d in docs if d.ingest["outcome"] == D.KEPT and not d.skipped], by_source)
    for d in docs:
        if d.ingest["outcome"] != D.KEPT or d.reason is not None or d.skipped:
            continue
        preset = by_source[d.row["source"]]
        final = _place(d)
        kept_sims = [it["sim"] for it in final if it["type"] == D.IMAGE and it["sim"] is not None]
        if preset.assignment_sim is not None:
            share = sum(s > preset.assignment_sim for s in kept_sims) / max(len(kept_sims), 1)
            if share < preset.assignment_share:
                d.drop("low_assignment_similarity", round(share, 4))
                continue
        selected.append((d, final))
    return _write_selection(ingest_out, out, docs, ingest_only, selected, presets, min_sim)


def _write_selection(ingest_out, out, docs, ingest_only, selected, presets, min_sim) -> dict:
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
