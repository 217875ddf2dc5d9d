"""The demo's video sample: WebVid- and Panda-70M-format CSVs over short generated clips served from 127.0.0.1.

Clips are made with PyAV at build time (pipelines/video/synthetic.py): moving squares, a static frame, a hard scene
cut, a slideshow. Broken on purpose, so every outcome shows: a truncated MP4, an HTML page named `.mp4`, a 404, a
YouTube watch URL (direct files only, no site extractor: it fails at download; offline as a connection error), a duplicate URL, a row without URL, a Panda-70M row
whose timestamp list does not parse and one clip outside its video.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from pipelines.video.sources import PANDA_COLUMNS, WEBVID_COLUMNS
from pipelines.video.synthetic import synthetic_mp4

CLIPS = {  # file -> (kind, seconds, caption)
    "harbour.mp4": ("moving", 3.0, "a white box drifts across a colourful gradient"),
    "street.mp4": ("moving", 2.5, "a bright square slides from left to right"),
    "garden.mp4": ("moving", 3.0, "a small white block moves over a soft background"),
    "still.mp4": ("static", 2.5, "a still gradient that never changes"),
    "two_scenes.mp4": ("cut", 3.0, "a moving square, then a hard cut to another scene"),
    "slides.mp4": ("slideshow", 3.0, "three still pictures shown one after another"),
    # Panda-70M's rows use videos of their own (a URL already ingested would be a duplicate).
    "panda_scenes.mp4": ("cut", 3.0, ""),
    "panda_garden.mp4": ("moving", 3.0, ""),
    "panda_slides.mp4": ("slideshow", 3.0, ""),
}


def write_csv(path: Path, header: Sequence[str], rows: list[list]) -> Path:
    """A CSV as the sources publish them (a header line, then the rows, quoted where needed)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def build_video_sample(folder: Path, www: Path, base_url: str) -> dict[str, Path]:
    """Write the clips under `www/videos/` and the two CSVs under `folder`; return {"webvid": csv, "panda70m": csv}."""
    folder, videos = Path(folder), Path(www) / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    videos.mkdir(parents=True, exist_ok=True)
    for i, (name, (kind, seconds, _)) in enumerate(CLIPS.items()):
        (videos / name).write_bytes(synthetic_mp4(kind, seconds, fps=12, size=(192, 144), seed=i))
    whole = (videos / "harbour.mp4").read_bytes()
    (videos / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (videos / "page.mp4").write_bytes(b"<!doctype html><title>not a video</title>")
    url = f"{base_url}/videos"
    webvid = [[f"10{i}", caption, i, f"page_{i}", f"PT00H00M{int(seconds):02d}S", f"{url}/{name}"]
              for i, (name, (_, seconds, caption)) in enumerate(CLIPS.items()) if not name.startswith("panda_")]
    webvid += [
        ["200", "a clip whose download stops early", 9, "p", "PT00H00M03S", f"{url}/truncated.mp4"],
        ["201", "a web page, not a video", 9, "p", "PT00H00M03S", f"{url}/page.mp4"],
        ["202", "a clip that is not there", 9, "p", "PT00H00M03S", f"{url}/missing.mp4"],
        ["203", "the same harbour clip again", 9, "p", "PT00H00M03S", f"{url}/harbour.mp4"],
        ["204", "a row without a URL", 9, "p", "PT00H00M03S", ""],
    ]
    panda = [
        ["vidA", f"{url}/panda_scenes.mp4", "[['0:00:00.000', '0:00:01.400'], ['0:00:01.600', '0:00:03.000']]",
         "['a square moving over a gradient', 'another scene with a square']", "['0.51', '0.47']"],
        ["vidB", f"{url}/panda_garden.mp4", "[['0:00:00.500', '0:00:02.500'], ['0:00:02.000', '0:00:09.000']]",
         "['a block moves slowly', 'a clip beyond the end of its video']", "['0.45', '0.44']"],
        ["vidC", f"{url}/panda_slides.mp4", "[['0:00:00.000', '0:00:03.000']]", "['a slideshow of stills']", "['0.5']"],
        ["vidD", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "[['0:00:01.000', '0:00:04.000']]",
         "['a YouTube page: direct files only']", "['0.6']"],
        ["vidE", f"{url}/street.mp4", "[['0:00:01', oops]]", "['timestamps that do not parse']", "['0.5']"],
    ]
    return {
        "webvid": write_csv(folder / "webvid_demo.csv", WEBVID_COLUMNS, webvid),
        "panda70m": write_csv(folder / "panda70m_demo.csv", PANDA_COLUMNS, panda),
    }
