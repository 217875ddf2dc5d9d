"""Curation presets: the filter chains of LAION-2B-en, DataComp and COYO-700M (docs/reference.md section 2).

Every preset starts with the metadata-only stages (undecodable images, URL dedup, file and image sizes, caption
length, metadata scores, CLIP thresholds), which carry a Spark form, then the Python-only ones (caption language,
image dedup). The first stage that fires names a row's drop reason, so the order is part of the preset.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pipelines.core import schema as S
from pipelines.curate.stages.caption_language_filter import CaptionLanguageFilter
from pipelines.curate.stages.caption_length_filter import CaptionLengthFilter
from pipelines.curate.stages.clip_score_filter import ClipScoreFilter
from pipelines.curate.stages.clip_top_fraction_filter import ClipTopFractionFilter
from pipelines.curate.columns import PHASH
from pipelines.curate.stages.duplicate_filter import DuplicateFilter
from pipelines.core.errors import TesseraUserError
from pipelines.curate.stages.image_decode_filter import ImageDecodeFilter
from pipelines.curate.stages.image_file_size_filter import ImageFileSizeFilter
from pipelines.curate.stages.image_size_filter import ImageSizeFilter
from pipelines.curate.stages.metadata_filter import MetadataFilter, MetadataRule
from pipelines.curate.stages.near_duplicate_filter import NearDuplicateFilter
from pipelines.core.stage import Stage

STAGE_CLASSES: dict[str, type[Stage]] = {
    cls.__name__: cls
    for cls in (ImageDecodeFilter, DuplicateFilter, ImageFileSizeFilter, ImageSizeFilter, CaptionLengthFilter,
                MetadataFilter, ClipScoreFilter, ClipTopFractionFilter, CaptionLanguageFilter, NearDuplicateFilter)
}

DECODE = ("ImageDecodeFilter", {})
URL_DEDUP = ("DuplicateFilter", {"columns": (S.URL,), "reason": "duplicate_url"})
SHA256_DEDUP = ("DuplicateFilter", {"columns": (S.SHA256,), "reason": "duplicate_image"})
ENGLISH = ("CaptionLanguageFilter", {"languages": ("en",)})


class Preset(BaseModel):
    """A named filter chain plus the CLIP model its thresholds were defined with and the band its keep rate (kept /
    selected samples) is expected in (docs/curate.md says why each band)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    description: str
    reference_clip_model: str | None
    keep_rate_band: tuple[float, float]
    stages: tuple[tuple[str, dict], ...]


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="laion2b",
        description="LAION-2B-en: CLIP ViT-B/32 image-text cosine >= 0.28",
        reference_clip_model="ViT-B-32:openai",
        keep_rate_band=(0.05, 0.98),
        stages=(DECODE, URL_DEDUP, ("ClipScoreFilter", {"min_score": 0.28}), SHA256_DEDUP),
    ),
    Preset(
        name="datacomp_basic",
        description="DataComp basic: English, > 2 words, > 5 chars, short side >= 200 px, aspect ratio <= 3",
        reference_clip_model=None,
        keep_rate_band=(0.05, 0.9),
        stages=(
            DECODE,
            URL_DEDUP,
            ("ImageSizeFilter", {"min_short_side": 200, "max_aspect_ratio": 3.0}),
            ("CaptionLengthFilter", {"min_words": 3, "min_chars": 6}),
            ENGLISH,
            SHA256_DEDUP,
        ),
    ),
    Preset(
        name="datacomp_clip_l14_30pct",
        description="DataComp CLIP-score baseline: ViT-L/14 top 30% of the whole pool",
        reference_clip_model="ViT-L-14:openai",
        keep_rate_band=(0.15, 0.31),
        stages=(DECODE, URL_DEDUP, ("ClipTopFractionFilter", {"fraction": 0.3}), SHA256_DEDUP),
    ),
    Preset(
        name="coyo",
        description="COYO-700M: image file >= 5 KB, aspect <= 3, short side >= 200, NSFW (opennsfw2, gantman) <= 0.5, "
        "English 3-256 words, <= 1000 chars, same text at most 10 times, dedup on (image hash, text); no CLIP "
        "threshold. Not implemented: 'contains a noun' and pHash dedup against eval sets",
        reference_clip_model=None,
        keep_rate_band=(0.05, 0.95),
        stages=(
            DECODE,
            URL_DEDUP,
            ("ImageFileSizeFilter", {"min_bytes": 5 * 1024}),
            ("ImageSizeFilter", {"min_short_side": 200, "max_aspect_ratio": 3.0}),
            ("CaptionLengthFilter", {"min_words": 3, "max_words": 256, "max_chars": 1000}),
            # A rule whose column the source lacks passes: only COYO ships these scores.
            ("MetadataFilter", {"rules": (MetadataRule(column="nsfw_score_opennsfw2", bound="max", value=0.5),
                                          MetadataRule(column="nsfw_score_gantman", bound="max", value=0.5))}),
            ENGLISH,
            SHA256_DEDUP,
            ("DuplicateFilter", {"columns": (PHASH, S.CAPTION), "reason": "duplicate_image_caption"}),
            ("DuplicateFilter", {"columns": (S.CAPTION,), "reason": "caption_repeated", "max_count": 10}),
        ),
    ),
)}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a user error listing the known ones."""
    if name not in PRESETS:
        raise TesseraUserError(f"unknown preset {name!r} (--preset): choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def keep_rate_band(preset: Preset, top_fraction: float | None = None) -> tuple[float, float]:
    """The preset's keep-rate band; a `--top-fraction` override scales a top-fraction preset's band with it."""
    low, high = preset.keep_rate_band
    fraction = next((cfg["fraction"] for name, cfg in preset.stages if name == "ClipTopFractionFilter"), None)
    if fraction is None or top_fraction is None:
        return low, high
    scale = top_fraction / fraction
    return round(low * scale, 6), round(min(1.0, high * scale), 6)


def build_stages(preset: Preset, min_clip_score: float | None = None, top_fraction: float | None = None,
                 near_dup_distance: int | None = None, extra_rules: tuple[MetadataRule, ...] = ()) -> list[Stage]:
    """Instantiate the preset's stages with command-line overrides applied."""
    stages: list[Stage] = []
    for cls_name, cfg in preset.stages:
        cfg = dict(cfg)
        if cls_name == "ClipScoreFilter" and min_clip_score is not None:
            cfg["min_score"] = min_clip_score
        if cls_name == "ClipTopFractionFilter" and top_fraction is not None:
            cfg["fraction"] = top_fraction
        stages.append(STAGE_CLASSES[cls_name](cfg))
    if extra_rules:
        # Right after URL dedup: a metadata-only stage (Spark runs it too) that comes before any image dedup.
        stages.insert(2, MetadataFilter({"rules": tuple(extra_rules)}))
    if near_dup_distance is not None:
        stages.append(NearDuplicateFilter({"max_distance": near_dup_distance}))
    return stages


def parse_metadata_rule(text: str, bound: str) -> MetadataRule:
    """`COLUMN=VALUE` from `--max-meta` / `--min-meta` as a rule."""
    column, _, value = text.partition("=")
    try:
        return MetadataRule(column=column.strip(), bound=bound, value=float(value))
    except ValueError:
        raise TesseraUserError(f"--{bound}-meta expects COLUMN=NUMBER, got {text!r}") from None
