"""Document curation presets: the published MMC4, mmc4-core and OBELICS rules (values and origins: docs/documents.md).

Rules Tessera does not implement (NSFW and face classifiers, fastText lang-id, KenLM perplexity, word-list ratios
other than spam, pHash near-duplicates, the Spawning opt-out API) are listed there with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipelines.core.errors import TesseraUserError

# OBELICS build step 13 (`SPAM_WORDS` in build_obelics/13_final_processing.py, spelling kept): a paragraph whose
# share of these words is >= 0.12 is dropped.
SPAM_WORDS = frozenset(
    "facebook twitter instagram reddit youtube pinterest flickr share tweet post comment subscribe newletter blogger "
    "bloggers interested might like sign-up sign log logged access contact content privacy policy website cookies "
    "cookie licensed password account follow terms mailing list download loading click".split()
)


@dataclass(frozen=True)
class DocumentPreset:
    """One published rule set; `None` means the rule is off."""

    name: str
    description: str
    reference_clip_model: str | None
    sources: tuple[str, ...]  # documents of other sources are recorded as skipped, not curated
    min_side: int = 150
    max_side: int | None = None
    min_aspect: float = 0.5
    max_aspect: float = 2.0
    url_blocklist: tuple[str, ...] = ()
    max_url_documents: int | None = None  # an image URL in more documents than this is dropped everywhere
    min_sim: float | None = None  # drop an image whose CLIP similarity to every sentence is below this
    min_images: int = 1
    max_images: int | None = None
    min_sentences: int | None = None
    max_sentences: int | None = None
    min_words: int | None = None
    max_words: int | None = None
    paragraph_min_words: int | None = None
    paragraph_max_words: int | None = None
    max_spam_ratio: float | None = None
    assignment_sim: float | None = None  # mmc4-core: at least `assignment_share` of images matched above this
    assignment_share: float = 0.75
    dedup_image_sets: bool = False


MMC4 = DocumentPreset(
    name="mmc4",
    description="MMC4: images >= 150 px both sides, aspect 0.5..2, no logo/button/icon/plugin/widget URLs, "
    "CLIP similarity >= 0.15 to some sentence, then linear assignment; page-URL dedup",
    reference_clip_model="ViT-L-14:openai", sources=("mmc4",),
    url_blocklist=("logo", "button", "icon", "plugin", "widget"),
    min_sim=0.15,
)
PRESETS: dict[str, DocumentPreset] = {p.name: p for p in (
    MMC4,
    replace(
        MMC4, name="mmc4_core",
        description="mmc4-core: the mmc4 rules plus 4..40 sentences, 2..15 images and >= 75% of images matched "
        "with similarity > 0.25",
        min_images=2, max_images=15, min_sentences=4, max_sentences=40, assignment_sim=0.25,
    ),
    DocumentPreset(
        name="obelics",
        description="OBELICS: images 150..20000 px, aspect 0.5..2, image URLs in > 10 documents dropped, in-document "
        "duplicate images dropped, paragraphs of 4..1000 words and spam ratio < 0.12, 1..30 images and 10..2000 "
        "words per document, page-URL dedup (latest WARC kept) and identical image-set dedup",
        reference_clip_model=None, sources=("obelics",),
        max_side=20000, max_url_documents=10, min_images=1, max_images=30, min_words=10, max_words=2000,
        paragraph_min_words=4, paragraph_max_words=1000, max_spam_ratio=0.12, dedup_image_sets=True,
    ),
)}


def get_document_preset(name: str) -> DocumentPreset:
    """The preset called `name`, or a user error listing them."""
    if name not in PRESETS:
        raise TesseraUserError(f"unknown document preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
