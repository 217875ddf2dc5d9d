"""Video curation presets (`tessera curate INGEST_OUT --preset webvid|panda70m`); each value's origin is in
docs/video_curation.md."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.core.errors import TesseraUserError
from pipelines.video.scenes import CONTENT_THRESHOLD, MIN_SCENE_LEN_S

# Mean within-shot |dY| / 255 at 2 fps, about one grey level: generated stills and slideshows score <= 0.0002 (codec
# noise), the slowest generated motion 0.0103 (docs/video_curation.md, section 4).
MIN_MOTION = 0.004


@dataclass(frozen=True)
class VideoPreset:
    """One rule set for clips; `None` turns a rule off."""

    name: str
    description: str
    min_duration: float | None = 1.0  # seconds
    max_duration: float | None = 60.0
    min_short_side: int | None = 128  # pixels, of the stored clip
    max_cuts: int | None = 0  # hard cuts allowed inside a clip
    cut_threshold: float = CONTENT_THRESHOLD
    min_scene_len_s: float = MIN_SCENE_LEN_S
    min_motion: float | None = MIN_MOTION
    min_clip_score: float | None = None  # mean cosine of 3 frames with the caption; off: it depends on the model


VIDEO_PRESETS: dict[str, VideoPreset] = {p.name: p for p in (
    VideoPreset(
        name="webvid",
        description="WebVid stock previews: 1..60 s, short side >= 128 px, no hard cut (ContentDetector 27), "
                    f"within-shot motion >= {MIN_MOTION}",
    ),
    VideoPreset(
        name="panda70m",
        description="Panda-70M clips: 2.5..60 s (Panda-70M's event length limits), short side >= 128 px, no hard "
                    f"cut (ContentDetector 27), within-shot motion >= {MIN_MOTION}",
        min_duration=2.5,
    ),
)}


def get_video_preset(name: str) -> VideoPreset:
    """The video preset called `name`, or a user error listing them."""
    if name not in VIDEO_PRESETS:
        raise TesseraUserError(f"unknown video preset {name!r}: choose one of {', '.join(VIDEO_PRESETS)}")
    return VIDEO_PRESETS[name]
