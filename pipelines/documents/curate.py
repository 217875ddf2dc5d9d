"""`tessera curate INGEST_OUT --preset mmc4|mmc4_core|obelics[,...]`: document curation with the published rules.

Each preset curates the documents of its source (mmc4 and mmc4_core: MMC4; obelics: OBELICS); `--preset
mmc4,obelics` curates both in one pool. Documents of a source no given preset covers are recorded as `skipped`.

1. Scores (`scores.py`, per document partition, resumable): every downloaded image occurrence's open_clip cosine
   similarity to every text item of its document.
2. Selection (this module, whole pool; the rules in `rules.py`, the outputs in `ledgers.py`): image rules (size,
   aspect, URL words, URL frequency, in-document duplicates, relevance), text rules (paragraph words, spam ratio),
   MMC4 assignment of unplaced images to sentences (`assignment.py`), document limits (images, sentences, words,
   assignment similarity), then page-URL and image-set dedup. Every document of the ingest folder lands in
   `doc_ledger.parquet` exactly once (kept, dropped or rejected, with stage, reason, value) and every image
   occurrence of an accepted document in `image_ledger.parquet`.
3. Outputs: `curated/document_images.parquet` (the kept images' keys, for `tessera tokenize --curated`),
   `selection.parquet` (each kept document's final item list as JSON), and document shards (`shards.py`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.documents import schema as D
from pipelines.documents.ingest import doc_file
from pipelines.documents.ledgers import write_selection
from pipelines.documents.presets import DocumentPreset
from pipelines.documents.rules import Doc, dedup, document_rules, image_rules, place_items, text_rules
from pipelines.documents.scores import SCORES_DIR, linked_partitions


def _load(ingest_out: Path, out: Path, names: list[str], curated: set[str]) -> tuple[list[Doc], list[dict]]:
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
                docs.append(Doc(rows[o[D.DOC_ID]], o, images[o[D.DOC_ID]], sims[o[D.DOC_ID]]))
                docs[-1].skipped = name not in curated
            else:
                ingest_only.append(o)
                if o[D.DOC_ID] in rows:  # dropped at ingest: its images still get a curation row
                    docs.append(Doc(rows[o[D.DOC_ID]], o, images[o[D.DOC_ID]], {}))
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
    selected: list[tuple[Doc, list[dict]]] = []
    for d in docs:
        if d.ingest["outcome"] != D.KEPT or d.skipped:
            continue
        preset = by_source[d.row["source"]]
        text_rules(d, preset)
        image_rules(d, preset, url_documents, preset.min_sim if min_sim is None else min_sim)
        document_rules(d, preset)
    dedup([d for d in docs if d.ingest["outcome"] == D.KEPT and not d.skipped], by_source)
    for d in docs:
        if d.ingest["outcome"] != D.KEPT or d.reason is not None or d.skipped:
            continue
        preset = by_source[d.row["source"]]
        final = place_items(d)
        kept_sims = [it["sim"] for it in final if it["type"] == D.IMAGE and it["sim"] is not None]
        if preset.assignment_sim is not None:
            share = sum(s > preset.assignment_sim for s in kept_sims) / max(len(kept_sims), 1)
            if share < preset.assignment_share:
                d.drop("low_assignment_similarity", round(share, 4))
                continue
        selected.append((d, final))
    return write_selection(ingest_out, out, docs, ingest_only, selected, presets, min_sim)
