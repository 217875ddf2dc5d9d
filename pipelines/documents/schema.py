"""The canonical document schema, file layout and the outcome/reason strings shared by every document stage.

A document is one row: `doc_id`, `source`, `url` (the page), `input_file`/`input_row` (where it was read), `items`
(the document in reading order, each item either text or an image) and `extra` (every other source field, JSON).

Item struct: `type` ("text" | "image"), `text` (text items), `url` (image items), `placed` (false for an image whose
position the source does not give: it sits at the end until curation assigns it to a sentence), `meta` (the
source's per-image fields as JSON: MMC4 `image_info` minus `raw_url`, OBELICS `metadata[i]`).

Curated document shards (webdataset, `OUT/documents/NNNNN.tar`): per document `<doc_id>.json` plus
`<doc_id>.<i>.<ext>` for the i-th kept image. The JSON is
`{"doc_id", "source", "url", "items": [{"type": "text", "text"} | {"type": "image", "key", "url", "image": i,
"sim"}]}` where `key` is the image's sample key in the ingest shards (the key of its Emu3 token row) and `image`
the member index.
"""

from __future__ import annotations

import pyarrow as pa

DOC_ID = "doc_id"
ITEMS = "items"
EXTRA = "extra"
TEXT, IMAGE = "text", "image"

ITEM_TYPE = pa.struct([("type", pa.string()), ("text", pa.string()), ("url", pa.string()),
                       ("placed", pa.bool_()), ("meta", pa.string())])
DOC_SCHEMA = pa.schema([
    (DOC_ID, pa.string()), ("source", pa.string()), ("url", pa.string()), ("input_file", pa.string()),
    ("input_row", pa.int64()), (ITEMS, pa.list_(ITEM_TYPE)), (EXTRA, pa.string()),
])

# Folder layout under an ingest OUT (beside the image shards of the same folder).
DOCS_DIR = "documents"

# Document outcomes.
KEPT, DROPPED, REJECTED = "kept", "dropped", "rejected"
# Image outcomes at ingest (per image occurrence in a document).
DOWNLOADED, FAILED = "downloaded", "failed"
