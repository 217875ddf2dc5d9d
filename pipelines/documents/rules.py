"""The document rules of `tessera curate --preset mmc4|mmc4_core|obelics`: one document's images, texts, final item
placement and limits, and the pool's page-URL and image-set dedup. Each rule records its first reason, never deletes."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

import numpy as np

from pipelines.documents import schema as D
from pipelines.documents.assignment import assign_images
from pipelines.documents.presets import SPAM_WORDS, DocumentPreset

WORD = re.compile(r"\w[\w'-]*", re.UNICODE)


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class Doc:
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
        """Items of the images no rule dropped."""
        return [i for i, im in self.images.items() if im["drop"] is None]

    def kept_texts(self) -> list[int]:
        """Items of the texts no rule dropped."""
        return [i for i in self.texts if i not in self.dropped_texts]

    def drop_image(self, item: int, reason: str, value: float | None = None) -> None:
        """Drop one image with its first reason (a later rule does not overwrite it)."""
        if self.images[item]["drop"] is None:
            self.images[item].update(drop=reason, value=value)

    def drop(self, reason: str, value: float | None = None, duplicate_of: str | None = None) -> None:
        """Drop the document with its first reason."""
        if self.reason is None:
            self.reason = (reason, value, duplicate_of)


def image_rules(doc: Doc, preset: DocumentPreset, url_documents: Counter, min_sim: float | None) -> None:
    """Drop images that failed at ingest or break a size, aspect, URL or relevance rule (the first one counts)."""
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


def text_rules(doc: Doc, preset: DocumentPreset) -> None:
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


def place_items(doc: Doc) -> list[dict]:
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


def document_rules(doc: Doc, preset: DocumentPreset) -> None:
    """Drop the document on the first document limit it breaks (texts, images, sentences, words)."""
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


def _warc(doc: Doc) -> str:
    extra = json.loads(doc.row[D.EXTRA] or "{}")
    return str((extra.get("general_metadata") or {}).get("warc_filename") or "")


def dedup(docs: list[Doc], presets: dict[str, DocumentPreset]) -> None:
    """Page-URL dedup (the latest WARC file wins, then input order) and, where the preset says so (OBELICS),
    identical image sets."""
    rank = {d.id: n for n, d in enumerate(docs)}
    live = [d for d in docs if d.reason is None]
    by_url: dict[str, list[Doc]] = defaultdict(list)
    for d in live:
        if d.row["url"]:
            by_url[d.row["url"]].append(d)
    for group in by_url.values():
        winner = max(group, key=lambda d: (_warc(d), -rank[d.id]))
        for d in group:
            if d is not winner:
                d.drop("duplicate_document_url", duplicate_of=winner.id)
    by_set: dict[tuple, Doc] = {}
    candidates = (d for d in live if d.reason is None and presets[d.row["source"]].dedup_image_sets)
    for d in sorted(candidates, key=lambda d: (_warc(d), -rank[d.id]), reverse=True):
        key = tuple(sorted(d.images[i]["key"] for i in d.kept_images()))
        if key in by_set:
            d.drop("duplicate_image_set", duplicate_of=by_set[key].id)
        else:
            by_set[key] = d
