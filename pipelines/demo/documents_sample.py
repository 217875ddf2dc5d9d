"""The bundled document sample: MMC4 JSON lines and an OBELICS parquet over images served from 127.0.0.1.

Rows count from 0 (JSONL line i is row i). Good documents are English prose (`documents_text.py`) with drawn
pictures and a few of scikit-image's photos. Outcomes are those of `tessera ingest` of both files into one folder,
then `tessera curate --preset mmc4 | mmc4_core | obelics --min-clip-score -1`. A preset curates its own source only:
the other source's documents are `skipped` (`source_not_in_preset`); ingest rejects and drops keep their outcome.

CLIP: curate scores images against texts with `--clip-model`; the file's `similarity_matrix` and `matched_sim`
only look like MMC4's (row 2's `banner_ad.jpg` is < 0.15 to every sentence) and are never read. No outcome below
needs a meaningful similarity except mmc4_core's 75% rule (>= 75% of assignments above 0.25): the tiny random CLIP
fails it for every document, so "75% rule" rows are then `low_assignment_similarity`; with a real CLIP they pass
or not by what it sees. With relevance on (a real CLIP, default 0.15) any image may also go `low_clip_similarity`.

MMC4 (`mmc4_demo.jsonl`, 14 rows)
- rows 0, 2: kept (`mmc4`), 75% rule (`mmc4_core`). Row 0 holds `shared.jpg`, also in rows 11 and OBELICS 13.
- row 1: 3 sentences: kept by `mmc4`, dropped by `mmc4_core` (`too_few_sentences`, 4..40).
- row 3: a single image: kept by `mmc4`, dropped by `mmc4_core` (`too_few_images`, 2..15).
- row 4: a truncated JSON line: rejected `invalid_json`.
- row 5: empty `text_list`, its image has no `matched_text_index` (nothing to match): rejected `no_text`.
- row 6: no `image_info` key (read as no images): rejected `no_image`.
- row 7: its second image has `matched_text_index` 12 for 9 sentences: rejected `position_out_of_range`.
- row 8: its second `image_info` entry has no `raw_url`: that image rejected `missing_url`; kept with 2 images
  (`mmc4`), 75% rule.
- row 9: 5 images for 4 sentences, none with `matched_text_index`: all unplaced, assigned at curation (4 by linear
  assignment, the fifth to its most similar sentence); kept; 4 sentences is on the `mmc4_core` bound, 75% rule.
- row 10: both images 404 (`http_error`): dropped `no_image_downloaded`.
- row 11: 6 entries: `shared.jpg` twice (one download; the second occurrence `duplicate_image_in_document`), a
  120 x 100 image (`image_too_small`), a 600 x 200 one (`image_aspect_ratio` 3), an HTML body named `.jpg` (fails
  to decode at ingest, `decode_error`) and a 360 x 180 one (aspect exactly 2: kept); kept with 2, 75% rule.
- row 12: `gone_lisbon_night.jpg` 404s and `lisbon_guide_logo.jpg` has "logo" in its URL (`image_url_pattern`);
  kept with 4 images, 75% rule.
- row 13: row 0's page URL again (`could_have_url_duplicate` 1): dropped `duplicate_document_url` (the first in
  input order wins; no WARC names in MMC4), under both MMC4 presets.

OBELICS (`obelics_demo.parquet`, 25 rows)
- row 0: kept with 3 images.
- row 1: its last text is two paragraphs; the second is spam (6 of 19 words on the list, 0.316 >= 0.12): removed
  (`text_ledger`: item 4, paragraph 1, `spam_words`); kept.
- row 2: `gone_darkroom.jpg` 404s, `golden_hour.jpg` appears twice (the second `duplicate_image_in_document`);
  kept with 3 images.
- row 3: `images` has 4 entries, `texts` 3: rejected `malformed_document`.
- row 4: position 1 holds both an image and a text: rejected `malformed_document`.
- row 5: images only, every text null: rejected `no_text`.
- rows 6, 7: the same page URL, WARC CC-MAIN-2021-10 and CC-MAIN-2023-14: row 6 dropped `duplicate_document_url`.
- rows 8, 9: different pages, the same two image URLs in another order, WARC 2022-05 and 2022-40: row 8 dropped
  `duplicate_image_set`.
- row 10: 6 words in all: dropped `too_few_words` (10..2000).
- row 11: the text "Photo: Anna Berg." (3 words: `paragraph_too_short`, then the item `no_paragraph_kept`), a
  150 x 225 image (kept: on the 150 bound) and a 149 x 200 one (`image_too_small`); kept with 2 images.
- row 12: `espresso_thumb.jpg` is 400 x 300 but rendered at 120 x 90 on the page (`rendered_width` /
  `rendered_height`): dropped `rendered_size`; kept with 2 images.
- row 13: also holds `shared.jpg`, which the MMC4 partition downloaded: linked to the same sample key, not fetched
  again; kept with 4 images.
- rows 14-24: eleven pages of one site, each with its own picture and the site's `daily_header.jpg`, which is in
  11 documents (> 10, OBELICS step 06): dropped `image_url_too_frequent` in each; all kept with their own picture.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from pipelines.demo.documents_text import SPAM_PARAGRAPH, TOPICS, paragraph, sentences
from pipelines.documents.assignment import assign_images, matched_sims

OBELICS_SCHEMA = pa.schema([("images", pa.list_(pa.string())), ("texts", pa.list_(pa.string())),
                            ("metadata", pa.string()), ("general_metadata", pa.string())])
SIZES = [(480, 360), (360, 480), (400, 400), (512, 288), (320, 240), (240, 320), (600, 400), (300, 200), (260, 390)]


def _jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _colour(rng: random.Random, lo: int = 30, hi: int = 230) -> tuple[int, int, int]:
    return rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi)


def _drawn(rng: random.Random, w: int, h: int) -> Image.Image:
    """A simple landscape (sky, sun, hills) or still life (wall, table, bowl) in random colours."""
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    top, bottom = _colour(rng), _colour(rng)
    for y in range(h):
        t = y / max(1, h - 1)
        draw.line((0, y, w, y), fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    if rng.random() < 0.5:
        r = rng.randint(h // 14, h // 7)
        cx, cy = rng.randint(r, w - r), rng.randint(r, h // 2)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(250, 215, 110))
        for k in range(2):
            base = h * (0.55 + 0.18 * k)
            ridge = [(x, base - rng.randint(0, h // 5)) for x in range(0, w + w // 6, max(1, w // 6))]
            draw.polygon([(0, h), *ridge, (w, h)], fill=_colour(rng, 20, 150))
    else:
        table = int(h * rng.uniform(0.55, 0.75))
        draw.rectangle((0, table, w, h), fill=_colour(rng, 60, 200))
        bw = rng.randint(w // 4, w // 2)
        x0 = rng.randint(0, w - bw)
        draw.ellipse((x0, table - bw // 2, x0 + bw, table + bw // 5), fill=_colour(rng))
        draw.rectangle((x0 + bw // 3, table - bw // 2 - bw // 4, x0 + 2 * bw // 3, table - bw // 3), fill=_colour(rng))
    return img


class _Pictures:
    """Writes the sample's files under `www/docs` and hands out their URLs."""

    def __init__(self, www: Path, base_url: str, rng: random.Random):
        self.folder, self.base, self.rng = Path(www) / "docs", base_url.rstrip("/"), rng
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sizes: dict[str, tuple[int, int]] = {}

    def url(self, name: str) -> str:
        return f"{self.base}/docs/{name}"

    def drawn(self, name: str, size: tuple[int, int] | None = None) -> str:
        w, h = size or self.rng.choice(SIZES)
        return self._write(name, _jpeg(_drawn(self.rng, w, h)), (w, h))

    def photo(self, name: str, skimage_file: str, size: tuple[int, int]) -> str:
        from skimage import data as skdata

        img = Image.open(Path(skdata.__file__).parent / skimage_file).convert("RGB").resize(size)
        return self._write(name, _jpeg(img), size)

    def body(self, name: str, data: bytes) -> str:
        return self._write(name, data, None)

    def missing(self, name: str) -> str:
        """A URL under `docs/` with no file behind it: the server answers 404."""
        return self.url(name)

    def _write(self, name: str, data: bytes, size: tuple[int, int] | None) -> str:
        (self.folder / name).write_bytes(data)
        if size:
            self.sizes[self.url(name)] = size
        return self.url(name)


def _mmc4_doc(rng: random.Random, page: str, text: list[str], images: list[tuple[str, str]]) -> dict:
    """An MMC4 record over `images` = (raw_url, "good" | "off"); matched_* by MMC4's assignment of its own matrix."""
    n_img, n_txt = len(images), len(text)
    sim = np.zeros((n_img, n_txt))
    for i, (_, kind) in enumerate(images):
        sim[i] = [rng.uniform(*((0.05, 0.14) if kind == "off" else (0.12, 0.21))) for _ in range(n_txt)]
        if n_txt and kind == "good":
            sim[i, (i * n_txt) // n_img] = rng.uniform(0.27, 0.34)
    sim = sim.round(4)
    assigned = assign_images(sim) if n_txt else np.zeros(n_img, dtype=int)
    matched = matched_sims(sim, assigned) if n_txt else np.zeros(n_img)
    info = [{"image_name": hashlib.sha1(url.rsplit("/", 1)[-1].encode()).hexdigest()[:12] + ".jpg", "raw_url": url,
             "matched_text_index": int(assigned[i]), "matched_sim": float(matched[i]), "face_detections": None}
            for i, (url, _) in enumerate(images)]
    return {"url": page, "text_list": text, "image_info": info, "similarity_matrix": sim.tolist(),
            "could_have_url_duplicate": 0}


def _mmc4_lines(pics: _Pictures, rng: random.Random) -> list[str]:
    """The MMC4 rows in order (see the module docstring); row 4 is a truncated JSON line."""
    def good(*stems: str) -> list[tuple[str, str]]:
        return [(pics.drawn(f"{stem}.jpg"), "good") for stem in stems]

    def doc(page: str, text: list[str], images: list[tuple[str, str]]) -> dict:
        return _mmc4_doc(rng, f"https://{page}", text, images)

    shared = pics.drawn("shared.jpg", (420, 300))
    garden = "gardening.example.com/tomatoes-from-seed"
    # Rows 5 and 7 are rejected before any fetch, so their image URLs have no file behind them.
    docs = [
        doc(garden, sentences("garden")[:8], good("seedling_tray", "raised_bed") + [(shared, "good")]),
        doc("brewing.example.org/pour-over-basics", sentences("coffee")[:3],
            [(pics.photo("coffee_cup.jpg", "coffee.png", (330, 220)), "good"), *good("pour_over")]),
        doc("launches.example.net/falcon-night-launch", sentences("space"),
            [(pics.photo("rocket.jpg", "rocket.jpg", (200, 300)), "good"), *good("launch_pad"),
             (pics.photo("astronaut.jpg", "astronaut.png", (300, 300)), "good"), *good("night_sky"),
             (pics.drawn("banner_ad.jpg", (480, 320)), "off")]),
        doc("pets.example.com/adopting-an-older-cat", sentences("cat")[:6],
            [(pics.photo("chelsea.jpg", "chelsea.png", (360, 240)), "good")]),
        doc("pets.example.com/gallery-only", [], [(pics.missing("cat_gallery.jpg"), "good")]),
        doc("cycling.example.org/text-only-notes", sentences("bike")[:5], []),
        doc("baking.example.com/first-sourdough", sentences("bread")[:9],
            [(pics.missing(f"{stem}.jpg"), "good") for stem in ("proofing_basket", "crumb_shot", "baked_loaf")]),
        doc("cycling.example.org/chain-care", sentences("bike")[:8],
            good("chain_closeup") + [(pics.missing("brake_pads.jpg"), "good")] + good("gravel_bike")),
        doc("trails.example.net/glacier-loop", sentences("hike")[:4], good(*(f"glacier_{i}" for i in range(5)))),
        doc("birding.example.org/first-binoculars", sentences("birds")[:6],
            [(pics.missing("gone_heron.jpg"), "good"), (pics.missing("gone_robin.jpg"), "good")]),
        doc("photo.example.com/light-and-lines", sentences("photo"),
            [(shared, "good"), (pics.drawn("tiny_thumb.jpg", (120, 100)), "good"),
             (pics.drawn("panorama_strip.jpg", (600, 200)), "good"),
             (pics.body("not_an_image.jpg", b"<html><body>a page, not a picture</body></html>"), "good"),
             (shared, "good"), (pics.drawn("two_to_one.jpg", (360, 180)), "good")]),
        doc("travel.example.net/three-days-in-lisbon", sentences("lisbon"),
            good("lisbon_tram", "lisbon_roofs", "lisbon_belem", "lisbon_sintra", "lisbon_guide_logo")
            + [(pics.missing("gone_lisbon_night.jpg"), "good")]),
        {**doc(garden, sentences("garden")[2:8], good("tomato_harvest", "basil_rows")), "could_have_url_duplicate": 1},
    ]
    for entry in docs[4]["image_info"] + docs[8]["image_info"]:  # rows 5 and 9 (once row 4 is inserted)
        del entry["matched_text_index"], entry["matched_sim"]
    del docs[5]["image_info"]  # row 6
    docs[6]["image_info"][1]["matched_text_index"] = 12  # row 7: 9 sentences
    del docs[7]["image_info"][1]["raw_url"]  # row 8
    lines = [json.dumps(d, ensure_ascii=False) for d in docs]
    return lines[:4] + [lines[0][:97]] + lines[4:]


def _warc(dump: str, n: int) -> str:
    return f"crawl-data/CC-MAIN-{dump}/segments/1675000000000.{n:02d}/warc/CC-MAIN-{dump}-{n:05d}.warc.gz"


ImageItem = tuple[str, str, dict]  # (URL, alt text, extra metadata)


def _obelics_row(pics: _Pictures, page: str, warc: str, items: list[str | ImageItem]) -> dict:
    """An OBELICS row; `items` in reading order: a paragraph text, or (image URL, alt text, extra metadata)."""
    images, texts, meta = [], [], []
    for item in items:
        url, alt, extra = (None, None, {}) if isinstance(item, str) else item
        w, h = pics.sizes.get(url, (400, 300))
        images.append(url)
        texts.append(item if url is None else None)
        meta.append(None if url is None else {"document_url": page, "unformatted_src": url.split("/", 3)[-1],
                                              "src": url, "alt_text": alt, "original_width": w,
                                              "original_height": h, **extra})
    return {"images": images, "texts": texts, "metadata": json.dumps(meta),
            "general_metadata": json.dumps({"url": page, "warc_filename": warc,
                                            "warc_record_offset": 1000 * len(page), "warc_record_length": 4096})}


def _obelics_rows(pics: _Pictures) -> list[dict]:
    """The OBELICS rows in order (see the module docstring)."""
    def img(stem: str, size: tuple[int, int] | None = None, alt: str = "", **extra) -> ImageItem:
        return pics.drawn(f"{stem}.jpg", size), alt, extra

    def gone(stem: str) -> ImageItem:
        return pics.missing(f"{stem}.jpg"), "", {}

    def row(page: str, warc: str, *items: str | ImageItem) -> dict:
        return _obelics_row(pics, f"https://{page}", warc, list(items))

    p = paragraph
    w22, w23 = _warc("2022-49", 7), _warc("2023-06", 3)
    golden = img("golden_hour", alt="Sunset over a rocky coast")
    cat, board = img("shelter_cat"), img("scratching_board")
    # Rows 3 and 4 are rejected before any fetch, so their image URLs have no file behind them.
    ragged = row("notes.example.com/ragged", w22, gone("ragged_one"), p("hike", 0, 3), gone("ragged_two"),
                 p("hike", 3, 6))
    both = row("notes.example.com/overlap", w22, p("hike", 0, 3), gone("overlap"))
    header = img("daily_header", (400, 240), alt="Daily notes")
    daily = [row(f"daily.example.org/notes/{n}", w23, p(topic, start, start + 2), img(f"daily_{n:02d}"), header)
             for n, (topic, start) in enumerate([*((t, 0) for t in TOPICS), ("garden", 2)])]
    return [
        row("travel.example.org/lisbon-tram-walk", w22, img("alfama_street", alt="A yellow tram in Alfama"),
            p("lisbon", 0, 3), img("tagus_view"), p("lisbon", 3, 6), p("lisbon", 6, 9), img("sintra_palace")),
        row("kitchen.example.net/sourdough-week", w23, p("bread", 0, 3), img("starter_jar"), p("bread", 3, 7),
            img("scored_loaf"), p("bread", 7, 10) + "\n\n" + SPAM_PARAGRAPH),
        row("lens.example.com/field-notes", w22, p("photo", 0, 3), golden, p("photo", 3, 6), gone("gone_darkroom"),
            img("portrait_window"), p("photo", 6, 9), golden, img("histogram_screen")),
        {**ragged, "texts": ragged["texts"][:3]},
        {**both, "images": [None, both["images"][1]], "texts": [both["texts"][0], "A caption on the image."]},
        row("lens.example.com/untitled-gallery", w23, img("gallery_one"), img("gallery_two")),
        row("garden.example.org/raised-beds", _warc("2021-10", 1), p("garden", 8, 10), img("old_raised_bed")),
        row("garden.example.org/raised-beds", _warc("2023-14", 2), p("garden", 0, 4), img("new_raised_bed"),
            p("garden", 4, 8), img("marigolds")),
        row("cats.example.com/shelter-story", _warc("2022-05", 4), p("cat", 0, 4), cat, p("cat", 4, 8), board),
        row("news.example.net/syndicated/shelter-story", _warc("2022-40", 5), board, p("cat", 0, 3), cat,
            p("cat", 3, 8)),
        row("home.example.com/kitchen", w23, "Our new kitchen, finished at last.", img("new_kitchen")),
        row("birds.example.org/garden-feeder", w22, p("birds", 0, 3), img("garden_feeder", (150, 225)),
            "Photo: Anna Berg.", p("birds", 3, 7), img("tiny_robin", (149, 200)), img("wetland_reserve")),
        row("brew.example.com/home-espresso", w23, img("espresso_tin"), p("coffee", 0, 4),
            img("espresso_thumb", (400, 300), rendered_width=120, rendered_height=90), p("coffee", 4, 9),
            img("scale_and_kettle")),
        row("space.example.net/launch-day", w22, p("space", 0, 3), img("rollout"), p("space", 3, 6),
            img("booster_landing"), p("space", 6, 10), img("beach_crowd"), (pics.url("shared.jpg"), "", {})),
        *daily,
    ]


def build_document_sample(folder: Path, www: Path, base_url: str, seed: int = 0) -> dict[str, Path]:
    """Write images under `www/docs/` and the sources under `folder`; return {"mmc4": jsonl, "obelics": parquet}."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pics = _Pictures(Path(www), base_url, rng)
    mmc4, obelics = folder / "mmc4_demo.jsonl", folder / "obelics_demo.parquet"
    mmc4.write_text("\n".join(_mmc4_lines(pics, rng)) + "\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(_obelics_rows(pics), schema=OBELICS_SCHEMA), obelics)
    return {"mmc4": mmc4, "obelics": obelics}
