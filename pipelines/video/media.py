"""Video encode/decode with PyAV (FFmpeg's libraries, bundled in the `av` wheel: no system ffmpeg needed).

`encode_mp4` writes frames as H.264 (libx264, yuv420p, even sides) in an MP4; `decode_frames` reads frames back,
optionally resampled to a frame rate by timestamp (nearest earlier frame); `probe` reads duration, size and rate.
Decoding never trusts the container: corrupt or non-video bytes raise `MediaError` with a short reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


class MediaError(Exception):
    """Bytes that are not a decodable video (truncated, another format, no video stream)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: seconds, frame size, average frame rate, frames (0 when unknown)."""

    duration: float
    width: int
    height: int
    fps: float
    frames: int


def _open(data: bytes):
    import av

    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as err:
        raise MediaError(f"not a readable video container ({type(err).__name__})") from None


def probe(data: bytes) -> VideoInfo:
    """Duration, size, rate and frame count of the first video stream."""
    with _open(data) as container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        return VideoInfo(duration, stream.codec_context.width, stream.codec_context.height, rate, stream.frames or 0)


def decode_frames(data: bytes, *, fps: float | None = None, start: float = 0.0, end: float | None = None,
                  size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], list[float]]:
    """RGB uint8 frames (H, W, 3) and their times in seconds, from `start` to `end` (seconds).

    fps: keep one frame per 1/fps seconds (the latest decoded frame at or before each tick); None keeps every frame.
    size: (width, height) to scale every frame to (FFmpeg's scaler, bicubic)."""
    import av

    frames: list[np.ndarray] = []
    times: list[float] = []
    next_tick = start
    try:
        with _open(data) as container:
            if not container.streams.video:
                raise MediaError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if start > 0:
                container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
            previous = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if end is not None and t >= end:
                    # Ticks still before `end` take the newest frame before it.
                    while fps is not None and previous is not None and next_tick < end - 1e-9:
                        frames.append(_rgb(previous[0], size))
                        times.append(next_tick)
                        next_tick = start + len(times) / fps
                    break
                if t < start:
                    previous = (frame, t)
                    continue
                if fps is None:
                    frames.append(_rgb(frame, size))
                    times.append(t)
                    continue
                # Ticks passed since the last kept frame take the newest frame at or before them.
                while next_tick <= t + 1e-9 and (end is None or next_tick < end):
                    chosen = frame if abs(t - next_tick) < 1e-9 or previous is None else previous[0]
                    frames.append(_rgb(chosen, size))
                    times.append(next_tick)
                    next_tick = start + len(times) / fps
                previous = (frame, t)
    except av.error.FFmpegError as err:
        if not frames:
            raise MediaError(f"video does not decode ({type(err).__name__})") from None
        # A truncated file: keep what decoded, the caller checks it covers the clip.
    return frames, times


def _rgb(frame, size: tuple[int, int] | None) -> np.ndarray:
    if size is not None:
        frame = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="BICUBIC")
        return frame.to_ndarray()
    return frame.to_ndarray(format="rgb24")


def encode_mp4(frames: list[np.ndarray], fps: float, *, crf: int = 23, preset: str = "veryfast") -> bytes:
    """H.264 MP4 bytes of RGB uint8 frames (all the same size; odd sides are cropped by one pixel for yuv420p)."""
    import av

    if not frames:
        raise ValueError("no frames to encode")
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()
