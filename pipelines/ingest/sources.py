"""Source metadata schemas (LAION, COYO-700M, DataComp, CapsFusion-120M) and their mapping onto the canonical schema.

Each source names which of its columns become `url`, `caption`, `original_width` and `original_height`; every other
column is kept as-is. Reading is done by DuckDB straight over the parquet files (see `pipelines.ingest.sequence`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError

# Names img2dataset writes into its sidecar, plus our own bookkeeping: a source column with one of these names is
# kept under `src_<name>` so it cannot clobber them.
RESERVED = {
    S.KEY, S.URL, S.CAPTION, S.SOURCE, S.STATUS, S.ERROR_MESSAGE, S.WIDTH, S.HEIGHT, S.ORIGINAL_WIDTH,
    S.ORIGINAL_HEIGHT, S.SHA256, "exif", S.INPUT_FILE, S.INPUT_ROW, S.META_WIDTH, S.META_HEIGHT, S.REASON,
    S.DUPLICATE_OF,
}


@dataclass(frozen=True)
class SourceSchema:
    """How one published metadata schema maps onto Tessera's canonical columns."""

    name: str
    url: str
    caption: str
    width: str | None = None
    height: str | None = None
    known: tuple[str, ...] = field(default_factory=tuple)  # the published columns, for docs and tests

    @property
    def required(self) -> tuple[str, str]:
        return (self.url, self.caption)


SOURCES: dict[str, SourceSchema] = {
    "laion": SourceSchema(
        "laion", url="URL", caption="TEXT", width="WIDTH", height="HEIGHT",
        known=("SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE", "NSFW", "similarity", "hash", "punsafe",
               "pwatermark", "top_caption", "all_captions", "all_similarities"),
    ),
    "coyo": SourceSchema(
        "coyo", url="url", caption="text", width="width", height="height",
        known=("id", "url", "text", "width", "height", "image_phash", "text_length", "word_count", "num_tokens_bert",
               "num_tokens_gpt", "num_faces", "clip_similarity_vitb32", "clip_similarity_vitl14",
               "nsfw_score_opennsfw2", "nsfw_score_gantman", "watermark_score", "aesthetic_score_laion_v2"),
    ),
    "datacomp": SourceSchema(
        "datacomp", url="url", caption="text", width="original_width", height="original_height",
        known=("uid", "url", "text", "original_width", "original_height", "clip_b32_similarity_score",
               "clip_l14_similarity_score", "face_bboxes"),
    ),
    "capsfusion": SourceSchema(
        "capsfusion", url="image_url", caption="laion_2b",
        known=("image_url", "laion_2b", "laion_coco", "capsfusion"),
    ),
}


# Document sources (pipelines.documents): their distinct image URLs are prepared from a table that
# `pipelines.documents.ingest` writes with these columns.
DOCUMENT_IMAGE_TABLES: dict[str, SourceSchema] = {
    name: SourceSchema(name, url="url", caption="caption", width="original_width", height="original_height")
    for name in ("mmc4", "obelics")
}


def get_source(name: str) -> SourceSchema:
    """The schema for `name`, or a user error listing the known sources."""
    try:
        return SOURCES[name] if name in SOURCES else DOCUMENT_IMAGE_TABLES[name]
    except KeyError:
        raise TesseraUserError(
            f"unknown source '{name}'; choose one of: {', '.join([*SOURCES, *DOCUMENT_IMAGE_TABLES])}") from None


def check_file_list(paths: list[Path]) -> None:
    """A user error when no file is given or one is given twice (pair and document sources alike)."""
    if not paths:
        raise TesseraUserError("no metadata files given")
    resolved = [Path(p).resolve() for p in paths]
    repeated = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if repeated:
        raise TesseraUserError(f"metadata file given more than once: {repeated[0]}")


def validate_files(paths: list[Path], source: SourceSchema) -> list[str]:
    """Check every file exists, is parquet and has the source's URL and caption columns; return the union of columns."""
    check_file_list(paths)
    columns: dict[str, None] = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise TesseraUserError(f"metadata file not found: {path}")
        if not path.is_file():
            raise TesseraUserError(f"metadata path is not a file: {path}")
        try:
            names = pq.read_schema(path).names
        except Exception as err:  # pyarrow raises several types for non-parquet bytes
            raise TesseraUserError(f"{path} is not a readable parquet file ({type(err).__name__})") from None
        missing = [c for c in source.required if c not in names]
        if missing:
            raise TesseraUserError(
                f"{path} has no column {', '.join(repr(m) for m in missing)}: the '{source.name}' source needs "
                f"{source.url} (image URL) and {source.caption} (caption); the file has {', '.join(names[:12])}"
            )
        columns.update(dict.fromkeys(names))
    return list(columns)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def canonical_select(source: SourceSchema, columns: list[str]) -> str:
    """DuckDB select-list mapping the source's columns onto the canonical ones, keeping every other column."""
    parts = [
        f"{_q(source.url)}::VARCHAR AS {S.URL}",
        f"{_q(source.caption)}::VARCHAR AS {S.CAPTION}",
        f"'{source.name}' AS {S.SOURCE}",
        (f"TRY_CAST({_q(source.width)} AS BIGINT)" if source.width in columns else "NULL::BIGINT")
        + f" AS {S.ORIGINAL_WIDTH}",
        (f"TRY_CAST({_q(source.height)} AS BIGINT)" if source.height in columns else "NULL::BIGINT")
        + f" AS {S.ORIGINAL_HEIGHT}",
    ]
    mapped = {source.url, source.caption, source.width, source.height}
    for col in columns:
        if col in mapped:
            continue
        alias = f"src_{col}" if col in RESERVED else col
        parts.append(f"{_q(col)} AS {_q(alias)}")
    return ", ".join(parts)
