"""MMC4 (JSON lines) and OBELICS (parquet) documents mapped onto the canonical document schema.

Each input document either becomes one canonical row (`pipelines.documents.schema.DOC_SCHEMA`) or one reject with a
stable reason and a short detail. The published field names and their meaning are in docs/documents.md.

MMC4: `text_list` are the sentences; `image_info[i].raw_url` the image URL; `matched_text_index` the sentence the
image was assigned to. An image is placed before its sentence (Flamingo's and the MMC4 paper's reading); an image
without `matched_text_index` is appended unplaced and curation assigns it. MMC4 ships `.jsonl` shards, also zipped:
`.jsonl`, `.jsonl.gz` and `.zip` (every `.jsonl` member, in name order) are read.

OBELICS: `images[i]` / `texts[i]` hold exactly one non-null value per position; `metadata` is a JSON list of the
same length (a dict at image positions); `general_metadata` a JSON dict with the page `url`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.rejects import BadInput, Reject
from pipelines.documents import schema as D
from pipelines.ingest.sources import check_file_list

DOCUMENT_SOURCES = ("mmc4", "obelics")
OBELICS_REQUIRED = ("images", "texts")

# Reasons a document is rejected at ingest.
INVALID_JSON = "invalid_json"
MALFORMED = "malformed_document"
NO_TEXT = "no_text"
NO_IMAGE = "no_image"
POSITION_OUT_OF_RANGE = "position_out_of_range"


class BadDocument(BadInput):
    """Raised inside the parsers; becomes a Reject."""


def doc_id(partition: str, file_index: int, row: int) -> str:
    """A stable, filesystem- and webdataset-safe id (hex, no dots) for the row'th document of a partition's file."""
    return hashlib.sha1(f"{partition}\0{file_index}\0{row}".encode()).hexdigest()[:16]


def _text(text: str) -> dict:
    return {"type": D.TEXT, "text": text, "url": None, "placed": True, "meta": None}


def _image(url, placed: bool, meta: dict | None) -> dict:
    url = url.strip() if isinstance(url, str) else None
    return {"type": D.IMAGE, "text": None, "url": url or None, "placed": placed,
            "meta": json.dumps(meta, ensure_ascii=False, default=str) if meta else None}


def _check(items: list[dict]) -> list[dict]:
    if not any(i["type"] == D.TEXT and i["text"].strip() for i in items):
        raise BadDocument(NO_TEXT, "no non-empty text")
    if not any(i["type"] == D.IMAGE for i in items):
        raise BadDocument(NO_IMAGE, "no image")
    return items


def mmc4_items(doc) -> tuple[str | None, list[dict], dict]:
    """(page url, items, extra) of one MMC4 document, or BadDocument."""
    if not isinstance(doc, dict):
        raise BadDocument(MALFORMED, f"a JSON {type(doc).__name__}, not an object")
    texts, images = doc.get("text_list"), doc.get("image_info")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BadDocument(MALFORMED, "text_list is not a list of strings")
    if images is None:
        images = []
    if not isinstance(images, list) or not all(isinstance(i, dict) for i in images):
        raise BadDocument(MALFORMED, "image_info is not a list of objects")
    before: dict[int, list[dict]] = {}
    unplaced: list[dict] = []
    for n, info in enumerate(images):
        meta = {k: v for k, v in info.items() if k != "raw_url"}
        index = info.get("matched_text_index")
        if index is None:
            unplaced.append(_image(info.get("raw_url"), False, meta))
            continue
        if isinstance(index, bool) or not isinstance(index, int):
            raise BadDocument(MALFORMED, f"image_info[{n}].matched_text_index is not an integer")
        if not 0 <= index < len(texts):
            raise BadDocument(POSITION_OUT_OF_RANGE,
                              f"image_info[{n}].matched_text_index {index} outside 0..{len(texts) - 1}")
        before.setdefault(index, []).append(_image(info.get("raw_url"), True, meta))
    items: list[dict] = []
    for j, sentence in enumerate(texts):
        items += before.get(j, [])
        items.append(_text(sentence))
    items += unplaced
    url = doc.get("url") if isinstance(doc.get("url"), str) else None
    extra = {k: v for k, v in doc.items() if k not in ("url", "text_list", "image_info")}
    return url, _check(items), extra


def _json_field(value, what: str, kind: type):
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadDocument(MALFORMED, f"{what} is not valid JSON") from None
    if value is not None and not isinstance(value, kind):
        raise BadDocument(MALFORMED, f"{what} is not a JSON {kind.__name__}")
    return value


def obelics_items(row: dict) -> tuple[str | None, list[dict], dict]:
    """(page url, items, extra) of one OBELICS row, or BadDocument."""
    images, texts = row.get("images"), row.get("texts")
    if not isinstance(images, list) or not isinstance(texts, list):
        raise BadDocument(MALFORMED, "images or texts is not a list")
    if len(images) != len(texts):
        raise BadDocument(MALFORMED, f"images has {len(images)} entries, texts {len(texts)}")
    metadata = _json_field(row.get("metadata"), "metadata", list)
    if metadata is not None and len(metadata) != len(images):
        raise BadDocument(MALFORMED, f"metadata has {len(metadata)} entries, images {len(images)}")
    general = _json_field(row.get("general_metadata"), "general_metadata", dict) or {}
    items = []
    for i, (image, text) in enumerate(zip(images, texts)):
        if (image is None) == (text is None):
            both = "both" if image is not None else "neither"
            raise BadDocument(MALFORMED, f"position {i} has {both} an image and a text")
        meta = metadata[i] if metadata is not None else None
        if text is not None:
            items.append(_text(text))
        else:
            items.append(_image(image, True, meta if isinstance(meta, dict) else None))
    extra = {k: v for k, v in row.items() if k not in ("images", "texts", "metadata", "general_metadata")}
    if general:
        extra["general_metadata"] = general
    url = general.get("url") if isinstance(general.get("url"), str) else None
    return url, _check(items), extra


def _jsonl_lines(path: Path) -> Iterator[bytes]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            for name in sorted(n for n in archive.namelist() if n.endswith((".jsonl", ".json"))):
                with archive.open(name) as member:
                    yield from member
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        yield from f


def check_document_files(source: str, files: list[Path]) -> None:
    """One-line user errors for missing, repeated or unreadable inputs, before anything is written."""
    check_file_list(files)
    for path in map(Path, files):
        if not path.is_file():
            raise TesseraUserError(f"metadata file not found: {path}")
        if source == "obelics":
            try:
                names = pq.read_schema(path).names
            except Exception as err:  # pyarrow raises several types for non-parquet bytes
                raise TesseraUserError(f"{path} is not a readable parquet file ({type(err).__name__}); "
                                       "--source obelics reads OBELICS parquet") from None
            missing = [c for c in OBELICS_REQUIRED if c not in names]
            if missing:
                raise TesseraUserError(f"{path} has no column {', '.join(map(repr, missing))}: --source obelics "
                                       f"needs images and texts; the file has {', '.join(names[:12])}")
        else:
            try:
                with (zipfile.ZipFile(path) if path.suffix == ".zip" else
                      (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb"))) as f:
                    if not isinstance(f, zipfile.ZipFile):
                        f.read(1)
            except (OSError, zipfile.BadZipFile, EOFError) as err:
                raise TesseraUserError(f"{path} cannot be read as MMC4 JSON lines ({err})") from None


def read_documents(source: str, files: list[Path], partition: str) -> Iterator[dict | Reject]:
    """Every input document of `files` in order: a canonical row (dict of DOC_SCHEMA) or a Reject."""
    for file_index, path in enumerate(Path(f).resolve() for f in files):
        if source == "mmc4":
            rows = ((row, line) for row, line in enumerate(_jsonl_lines(path)) if line.strip())
            for row, line in rows:
                try:
                    doc = json.loads(line)
                except ValueError as err:
                    yield Reject(str(path), row, INVALID_JSON, str(err)[:200])
                    continue
                yield _canonical(source, path, file_index, row, partition, mmc4_items, doc)
        else:
            parquet = pq.ParquetFile(path)
            row = 0
            for batch in parquet.iter_batches(batch_size=1024):
                for record in batch.to_pylist():
                    yield _canonical(source, path, file_index, row, partition, obelics_items, record)
                    row += 1


def _canonical(source, path: Path, file_index: int, row: int, partition: str, parse, record) -> dict | Reject:
    try:
        url, items, extra = parse(record)
    except BadDocument as bad:
        return Reject(str(path), row, bad.reason, bad.detail[:200])
    return {D.DOC_ID: doc_id(partition, file_index, row), "source": source, "url": url, "input_file": str(path),
            "input_row": row, D.ITEMS: items, D.EXTRA: json.dumps(extra, ensure_ascii=False, default=str)}

