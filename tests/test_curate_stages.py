"""Curation filter stages (no Ray, no Dagster): reasons, first-reason-wins, no row ever deleted, dedup."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from pipelines.curate.stages.caption_language_filter import CaptionLanguageFilter
from pipelines.curate.stages.caption_length_filter import CaptionLengthFilter
from pipelines.curate.stages.clip_score_filter import ClipScoreFilter
from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter, pool_threshold
from pipelines.curate.presets import PRESETS, build_stages, get_preset, parse_metadata_rule
from pipelines.curate.stages.duplicate_filter import DuplicateFilter
from pipelines.core.errors import TesseraUserError
from pipelines.curate.stages.image_file_size_filter import ImageFileSizeFilter
from pipelines.curate.stages.image_size_filter import ImageSizeFilter
from pipelines.curate.stages.metadata_filter import MetadataFilter
from pipelines.curate.stages.near_duplicate_filter import NearDuplicateFilter


def outcome(table: pa.Table) -> dict:
    return dict(zip(table["key"].to_pylist(), table["drop_reason"].to_pylist()))


def test_image_size_filter_short_side_then_aspect():
    t = pa.table({"key": list("abcde"), "original_width": [640, 150, 1200, None, 100],
                  "original_height": [480, 120, 300, None, 400],
                  "meta_original_width": [1, 1, 1, 300, 1], "meta_original_height": [1, 1, 1, 250, 1]})
    out = ImageSizeFilter(min_short_side=200, max_aspect_ratio=3.0)(t)
    assert out.num_rows == 5
    assert outcome(out) == {"a": None, "b": "image_too_small", "c": "aspect_ratio_too_large", "d": None,
                            "e": "image_too_small"}  # d falls back to the metadata size; e: first reason wins
    assert out["drop_value"].to_pylist()[1:3] == [120.0, 4.0]


def test_image_file_size_filter_drops_small_stored_files():
    t = pa.table({"key": list("abcd"), "image_bytes": pa.array([5120, 5119, None, 300], pa.int64())})
    out = ImageFileSizeFilter(min_bytes=5120)(t)
    assert outcome(out) == {"a": None, "b": "image_file_too_small", "c": None, "d": "image_file_too_small"}
    assert out["drop_value"].to_pylist() == [None, 5119.0, None, 300.0]
    assert outcome(ImageFileSizeFilter()(t.drop_columns(["image_bytes"]))) == {k: None for k in "abcd"}


def test_coyo_nsfw_rules_bound_both_scores_when_present():
    [rules] = [s.config.rules for s in build_stages(get_preset("coyo")) if type(s).__name__ == "MetadataFilter"]
    both = pa.table({"key": list("abcd"), "nsfw_score_opennsfw2": [0.1, 0.6, 0.1, None],
                     "nsfw_score_gantman": [0.1, 0.1, 0.51, 0.9]})
    assert outcome(MetadataFilter(rules=rules)(both)) == {
        "a": None, "b": "nsfw_score_opennsfw2_above_max", "c": "nsfw_score_gantman_above_max",
        "d": "nsfw_score_gantman_above_max"}
    only_open = both.drop_columns(["nsfw_score_gantman"])  # a source without the gantman score
    assert outcome(MetadataFilter(rules=rules)(only_open)) == {"a": None, "b": "nsfw_score_opennsfw2_above_max",
                                                               "c": None, "d": None}


def test_caption_length_filter_matches_datacomp_basic_bounds():
    t = pa.table({"key": list("abcdef"),
                  "caption": ["two words", "a b c", "abc de fg", None, "x " * 300, "ok fine caption"]})
    out = CaptionLengthFilter(min_words=3, max_words=256, min_chars=6)(t)
    assert outcome(out) == {"a": "caption_too_few_words", "b": "caption_too_short", "c": None,
                            "d": "caption_too_few_words", "e": "caption_too_many_words", "f": None}


def test_language_filter_keeps_english():
    t = pa.table({"key": list("abc"), "caption": ["a photo of a dog on the beach at sunset",
                                                  "ein kleines rotes Haus am See mit einem Garten",
                                                  "une petite maison rouge au bord du lac"]})
    out = CaptionLanguageFilter(languages=("en",))(t)
    assert outcome(out) == {"a": None, "b": "caption_language", "c": "caption_language"}


def test_metadata_filter_missing_columns_and_nulls_pass():
    t = pa.table({"key": list("abc"), "punsafe": [0.1, 0.9, None]})
    rules = (parse_metadata_rule("punsafe=0.5", "max"), parse_metadata_rule("aesthetic=5.5", "min"))
    out = MetadataFilter(rules=rules)(t)
    assert outcome(out) == {"a": None, "b": "punsafe_above_max", "c": None}
    with pytest.raises(TesseraUserError):
        parse_metadata_rule("punsafe", "max")


def test_clip_score_filter_threshold_and_missing():
    t = pa.table({"key": list("abcd"), "clip_score": pa.array([0.30, 0.28, 0.279, None], pa.float32())})
    out = ClipScoreFilter(min_score=0.28)(t)
    # Compared in float64, as on Spark: float32(0.28) is 0.2800000012 and passes.
    assert outcome(out) == {"a": None, "b": None, "c": "clip_score_below_threshold", "d": "clip_score_missing"}


def test_top_fraction_threshold_is_over_the_whole_pool():
    scores = np.array([0.9, 0.1, 0.5, 0.3, np.nan, 0.7, 0.2, 0.8, 0.4, 0.6, 0.05])
    assert pool_threshold(scores, 0.3) == 0.7  # ceil(0.3 * 10 scored) = 3: 0.9, 0.8, 0.7
    t = pa.table({"key": [str(i) for i in range(11)], "clip_score": scores})
    # A batch that is not the pool still applies the pool threshold it was given.
    half = ClipTopFractionFilter(fraction=0.3, threshold=0.7)(t.slice(0, 5))
    assert outcome(half) == {"0": None, "1": "clip_score_below_pool_fraction",
                             "2": "clip_score_below_pool_fraction", "3": "clip_score_below_pool_fraction",
                             "4": "clip_score_missing"}
    full = ClipTopFractionFilter(fraction=0.3)(t)
    assert sum(r is None for r in outcome(full).values()) == 3
    assert pool_threshold([np.nan], 0.3) == math.inf


def test_duplicate_filter_keeps_first_key_and_records_it():
    t = pa.table({"key": ["k3", "k1", "k2", "k4", "k5"], "sha256": ["x", "x", "y", "x", None],
                  "drop_reason": [None, None, None, "image_too_small", None],
                  "drop_stage": [None, None, None, "image_size", None],
                  "drop_value": pa.array([None] * 5, pa.float64()), "duplicate_of": pa.array([None] * 5, pa.string())})
    out = DuplicateFilter(columns=("sha256",), reason="duplicate_image")(t)
    assert outcome(out) == {"k3": "duplicate_image", "k1": None, "k2": None, "k4": "image_too_small", "k5": None}
    assert out["duplicate_of"].to_pylist() == ["k1", None, None, None, None]


def test_duplicate_filter_max_count_for_repeated_captions():
    t = pa.table({"key": [f"k{i:02d}" for i in range(13)], "caption": ["same"] * 12 + ["other"]})
    out = DuplicateFilter(columns=("caption",), reason="caption_repeated", max_count=10)(t)
    assert [r for r in outcome(out).values()].count("caption_repeated") == 2


def test_near_duplicate_filter_by_hamming_distance():
    base = 0x0F0F_0F0F_0F0F_0F0F
    hashes = [base, base ^ 0b111, base ^ 0xFFFF_0000_0000_0000, base ^ 0b1]
    t = pa.table({"key": list("abcd"), "phash": [f"{h:016x}" for h in hashes]})
    out = NearDuplicateFilter(max_distance=4)(t)
    assert outcome(out) == {"a": None, "b": "near_duplicate_image", "c": None, "d": "near_duplicate_image"}
    assert out["duplicate_of"].to_pylist() == [None, "a", None, "a"]
    assert out["drop_value"].to_pylist()[1] == 3.0
    exact = NearDuplicateFilter(max_distance=0)(t)
    assert outcome(exact) == {k: None for k in "abcd"}


def test_presets_reproduce_reference_rules():
    assert set(PRESETS) == {"laion2b", "datacomp_basic", "datacomp_clip_l14_30pct", "coyo"}
    laion = {type(s).__name__: s.config for s in build_stages(get_preset("laion2b"))}
    assert laion["ClipScoreFilter"].min_score == 0.28
    basic = {type(s).__name__: s.config for s in build_stages(get_preset("datacomp_basic"))}
    assert (basic["ImageSizeFilter"].min_short_side, basic["ImageSizeFilter"].max_aspect_ratio) == (200, 3.0)
    assert (basic["CaptionLengthFilter"].min_words, basic["CaptionLengthFilter"].min_chars) == (3, 6)
    assert basic["CaptionLanguageFilter"].languages == ("en",)
    l14 = {type(s).__name__: s.config for s in build_stages(get_preset("datacomp_clip_l14_30pct"))}
    assert l14["ClipTopFractionFilter"].fraction == 0.3
    coyo = build_stages(get_preset("coyo"))
    names = [type(s).__name__ for s in coyo]
    assert "ClipScoreFilter" not in names and "ClipTopFractionFilter" not in names
    reasons = [s.config.reason for s in coyo if type(s).__name__ == "DuplicateFilter"]
    assert reasons == ["duplicate_url", "duplicate_image", "duplicate_image_caption", "caption_repeated"]
    rules = next(s for s in coyo if type(s).__name__ == "MetadataFilter").config.rules
    assert [(r.column, r.bound, r.value) for r in rules] == [("nsfw_score_opennsfw2", "max", 0.5),
                                                             ("nsfw_score_gantman", "max", 0.5)]
    assert names.index("ImageFileSizeFilter") < names.index("ImageSizeFilter")
    assert next(s for s in coyo if type(s).__name__ == "ImageFileSizeFilter").config.min_bytes == 5 * 1024
    with pytest.raises(TesseraUserError, match="unknown preset"):
        get_preset("laion5b")
