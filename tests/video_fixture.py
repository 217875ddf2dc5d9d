"""Served videos for the video ingest tests: generated clips, a truncated file, a web page named .mp4, a YouTube-style
page, and WebVid / Panda-70M CSVs over them."""

from __future__ import annotations

import io
from pathlib import Path

from pipelines.video.synthetic import synthetic_frames, synthetic_mp4

WEBVID_HEADER = ["videoid", "name", "page_idx", "page_dir", "duration", "contentUrl"]
PANDA_HEADER = ["videoID", "url", "timestamp", "caption", "matching_score"]


def faststart_mp4(path: Path, seconds: float, fps: float = 10.0) -> bytes:
    """An MP4 with its index (moov) first, as web servers ship them: cut short, it still opens."""
    import av

    frames = synthetic_frames("moving", seconds, fps, seed=3)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path.read_bytes()


def cut_at(data: bytes, seconds: float) -> bytes:
    """`data` cut at the first packet (in file order) showing at or after `seconds`: the frames after it are lost."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is not None and float(packet.pts * stream.time_base) >= seconds:
                return data[:packet.pos]
    raise ValueError(f"no packet at or after {seconds} s")


def serve_videos(www: Path, base_url: str, folder: str) -> dict[str, str]:
    """Write the videos under `www/<folder>/` and return name -> URL."""
    root = Path(www) / folder
    root.mkdir(parents=True, exist_ok=True)
    whole = synthetic_mp4("moving", 3.0, 10.0)
    files = {
        "moving.mp4": whole,
        "cut.mp4": synthetic_mp4("cut", 2.0, 10.0, seed=1),
        "still.mp4": synthetic_mp4("static", 4.0, 10.0, seed=2),
        "truncated.mp4": whole[: len(whole) // 2],
        "page.mp4": b"<!doctype html><html><title>not a video</title></html>",
        "watch": b"<!doctype html><html><title>a watch page</title></html>",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    tail = faststart_mp4(root / "tail_whole.mp4", 3.0)
    (root / "tail.mp4").write_bytes(cut_at(tail, 1.6))
    urls = {name: f"{base_url}/{folder}/{name}" for name in (*files, "tail.mp4")}
    urls["missing.mp4"] = f"{base_url}/{folder}/missing.mp4"
    urls["youtube"] = f"{base_url}/{folder}/watch?v=dQw4w9WgXcQ"
    return urls
