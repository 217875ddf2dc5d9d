"""Each published metadata schema maps onto the canonical columns; other columns are kept as-is."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import write_parquet

from pipelines.core import schema as S
from pipelines.ingest.metadata_preparer import MetadataPreparer

CASES = {
    "laion": (
        {"SAMPLE_ID": 1, "URL": "http://h/a.jpg", "TEXT": "a cat", "HEIGHT": 480, "WIDTH": 640, "LICENSE": "?",
         "NSFW": "UNLIKELY", "similarity": 0.31, "hash": 123, "punsafe": 0.01, "pwatermark": 0.2},
        {"similarity": 0.31, "punsafe": 0.01, "pwatermark": 0.2, "SAMPLE_ID": 1},
    ),
    "coyo": (
        {"id": 7, "url": "http://h/b.jpg", "text": "a dog", "width": 800, "height": 600, "image_phash": "ab12",
         "nsfw_score_opennsfw2": 0.1, "watermark_score": 0.3, "aesthetic_score_laion_v2": 5.1,
         "clip_similarity_vitb32": 0.28},
        {"id": 7, "nsfw_score_opennsfw2": 0.1, "aesthetic_score_laion_v2": 5.1, "clip_similarity_vitb32": 0.28},
    ),
    "datacomp": (
        {"uid": "00ff", "url": "http://h/c.jpg", "text": "a bird", "original_width": 1024, "original_height": 768,
         "clip_b32_similarity_score": 0.27, "clip_l14_similarity_score": 0.24, "face_bboxes": [[0.1, 0.2, 0.3, 0.4]]},
        {"uid": "00ff", "clip_l14_similarity_score": 0.24, "face_bboxes": [[0.1, 0.2, 0.3, 0.4]]},
    ),
    "capsfusion": (
        {"image_url": "http://h/d.jpg", "laion_2b": "raw alt text", "laion_coco": "a synthetic caption",
         "capsfusion": "a fused caption"},
        {"laion_coco": "a synthetic caption", "capsfusion": "a fused caption"},
    ),
}
SIZES = {"laion": (640, 480), "coyo": (800, 600), "datacomp": (1024, 768), "capsfusion": (None, None)}


@pytest.mark.parametrize("source", sorted(CASES))
def test_source_maps_onto_canonical_schema(tmp_path, source):
    row, kept = CASES[source]
    meta = write_parquet(tmp_path / f"{source}.parquet", [row])
    manifest = MetadataPreparer(tmp_path / "out", 100).prepare(source, [meta], source)
    prepared = pq.read_table(tmp_path / "out" / S.PREPARED_DIR / f"{source}.parquet").to_pylist()
    assert manifest.input_rows == manifest.accepted == 1
    (got,) = prepared
    assert got[S.URL] == next(v for k, v in row.items() if k in ("URL", "url", "image_url"))
    assert got[S.CAPTION] == next(v for k, v in row.items() if k in ("TEXT", "text", "laion_2b"))
    assert got[S.SOURCE] == source
    assert (got[S.ORIGINAL_WIDTH], got[S.ORIGINAL_HEIGHT]) == SIZES[source]
    assert got[S.INPUT_FILE] == str(meta.resolve()) and got[S.INPUT_ROW] == 0
    for col, value in kept.items():
        assert got[col] == pytest.approx(value) if isinstance(value, float) else got[col] == value


def test_source_column_named_like_a_reserved_one_is_kept_under_a_prefix(tmp_path):
    meta = write_parquet(tmp_path / "m.parquet", [{"URL": "http://h/a.jpg", "TEXT": "x", "status": "ok", "key": 5}])
    MetadataPreparer(tmp_path / "out", 100).prepare("laion", [meta], "m")
    (got,) = pq.read_table(tmp_path / "out" / S.PREPARED_DIR / "m.parquet").to_pylist()
    assert got["src_status"] == "ok" and got["src_key"] == 5
    assert "status" not in got and "key" not in got
