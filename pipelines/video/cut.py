"""Cutting one downloaded video into its clips: probe, check each clip's range, decode at a fixed rate and size,
re-encode as H.264. No network and no files here (pipelines.video.download does those).

Row outcome (decided on the downloaded bytes):
- `not_a_video`: the body is no readable video container and does not start like one (an HTML page, a YouTube
  watch page), or the container has no video stream;
- `video_decode_error`: it starts like a video container (MP4/MOV, Matroska/WebM, AVI, FLV, Ogg, MPEG-PS/TS, ASF)
  but does not open (truncated, corrupt), or gives no duration or frame size;
- `image_too_many_pixels` (the fetch layer's guard reason): frames larger than `max_image_pixels`, not decoded;
- otherwise the row succeeds and each clip gets its own outcome.
A failed row's clips fail with the row's reason. Clip outcomes, in this order: `clip_out_of_range` (starts at or
after the video's end, or ends more than one source frame after it; an end within that frame is clamped),
`clip_too_short` (shorter than `min_clip_seconds` after clamping), then clips longer than `max_clip_seconds` are
cut to it (recorded), `video_decode_error` (frames do not decode or stop before the clip's end), `encode_error`,
else `success`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipelines.ingest.fetch.reasons import IMAGE_TOO_MANY_PIXELS
from pipelines.video import schema as V
from pipelines.video.media import MediaError, VideoInfo, decode_frames, encode_mp4, probe

_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
_EPS = 1e-6


@dataclass(frozen=True)
class CutSettings:
    """Output rate and short side, clip length limits, and the largest frame the decoder may be given."""

    fps: float
    short_side: int
    min_seconds: float
    max_seconds: float
    max_pixels: int


@dataclass
class ClipOutcome:
    """One clip's fate; `mp4` and the measured fields are set on success only."""

    status: str
    reason: str | None = None
    error_message: str | None = None
    start: float | None = None
    end: float | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    mp4: bytes | None = None
    notes: dict = field(default_factory=dict)  # what the clip's JSON records beyond the sidecar (cut, clamped)


class RowFailure(Exception):
    """The downloaded body cannot be cut at all; `str()` is the `"<reason>: <detail>"` error message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def looks_like_video(data: bytes) -> bool:
    """True when the bytes start like a video container, whatever their state further on."""
    head = data[:16]
    return (head[4:8] in _BMFF_BOXES or head[:4] in (b"\x1a\x45\xdf\xa3", b"OggS", b"\x00\x00\x01\xba",
                                                     b"\x30\x26\xb2\x75")
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI ") or head[:3] == b"FLV"
            or (len(data) > 188 and data[0] == 0x47 and data[188] == 0x47))


def open_video(data: bytes, settings: CutSettings) -> VideoInfo:
    """The probed video, or RowFailure with the row's reason."""
    try:
        info = probe(data)
    except MediaError as err:
        if "no video stream" in str(err) or not looks_like_video(data):
            start = data[:24].decode("latin-1").encode("unicode_escape").decode("ascii")
            raise RowFailure(V.NOT_A_VIDEO, f"{err}; body starts {start!r}") from None
        raise RowFailure(V.DECODE_ERROR, f"{err} (truncated or corrupt)") from None
    if info.duration <= 0 or info.width <= 0 or info.height <= 0:
        raise RowFailure(V.DECODE_ERROR, f"no duration or frame size ({info.duration:g} s, "
                                         f"{info.width}x{info.height})")
    if info.width * info.height > settings.max_pixels:
        raise RowFailure(IMAGE_TOO_MANY_PIXELS, f"frames of {info.width}x{info.height} > {settings.max_pixels} pixels")
    return info


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side `short_side` (rounded down to even), aspect kept, both even."""
    short = max(2, short_side - short_side % 2)
    scale = short / min(width, height)
    even = lambda x: max(2, int(round(x * scale / 2)) * 2)  # noqa: E731
    return (short, even(height)) if width <= height else (even(width), short)


def _failed(reason: str, detail: str, start, end, **notes) -> ClipOutcome:
    return ClipOutcome(V.FAILED, reason, f"{reason}: {detail}", start, end, notes=notes)


def cut_clip(data: bytes, info: VideoInfo, start: float, end: float | None, s: CutSettings) -> ClipOutcome:
    """One clip `[start, end)` (end None: the video's end) of a probed video, cut and re-encoded."""
    step = 1.0 / info.fps if info.fps > 0 else 1.0 / s.fps  # one source frame
    if start >= info.duration - _EPS or (end is not None and end > info.duration + step + _EPS):
        return _failed(V.CLIP_OUT_OF_RANGE, f"[{start:g}, {'end' if end is None else f'{end:g}'}] s outside the "
                                            f"video's {info.duration:g} s", start, end)
    notes = {}
    if end is None or end > info.duration:
        if end is not None:
            notes["clamped_from_end"] = end
        end = info.duration
    if end - start < s.min_seconds - _EPS:
        return _failed(V.CLIP_TOO_SHORT, f"{end - start:.3f} s < {s.min_seconds:g} s", start, end, **notes)
    if end - start > s.max_seconds + _EPS:
        notes["cut_from_end"] = end
        end = start + s.max_seconds
    want = max(1, math.ceil((end - start) * s.fps - _EPS))
    size = output_size(info.width, info.height, s.short_side)
    try:
        # One source frame past the end, so the ticks just before `end` see the frame that follows them.
        frames, times = decode_frames(data, fps=s.fps, start=start, end=end + step, size=size)
    except MediaError as err:
        return _failed(V.DECODE_ERROR, str(err), start, end, **notes)
    frames = frames[:min(want, sum(t < end - _EPS for t in times))]
    if frames and len(frames) < want:
        # The last source frame shows until the video's end: hold it for ticks after it, but only within one
        # source frame of the last decoded tick (a larger gap is a file that stops early).
        last_tick = start + (len(frames) - 1) / s.fps
        if end - last_tick <= step + 1.0 / s.fps + _EPS:
            frames += [frames[-1]] * (want - len(frames))
    if len(frames) < want:
        got = start + len(frames) / s.fps
        return _failed(V.DECODE_ERROR, f"frames stop at {got:.3f} s, the clip needs them to {end:.3f} s "
                                       "(truncated or corrupt)", start, end, **notes)
    import av

    try:
        mp4 = encode_mp4(frames, s.fps)
    except (av.error.FFmpegError, ValueError) as err:
        return _failed(V.ENCODE_ERROR, f"{type(err).__name__}: {err}"[:200], start, end, **notes)
    return ClipOutcome(V.SUCCESS, None, None, start, end, want, size[0], size[1], mp4, notes)
