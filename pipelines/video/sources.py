"""WebVid-10M and Panda-70M metadata (CSV as published, or parquet with the same columns) as video rows with clips.

Each input row becomes one `VideoRow` (a URL and its clips) or one `Reject` with a stable reason from
`pipelines.video.schema` and a short detail. Duplicate URLs are found by the caller (`pipelines.video.ingest`),
which also sees earlier partitions.

WebVid: `videoid, name, page_idx, page_dir, duration, contentUrl`; one clip per row, the whole video (its end is
left open and set to the probed duration at cutting; the ISO-8601 `duration` is kept as a source column).
Panda-70M: `videoID, url, timestamp, caption, matching_score` (+ optional `desirable_filtering`,
`shot_boundary_detection`). `timestamp` is the text of a Python list of `[start, end]` pairs (`'H:MM:SS.fff'`
strings, or seconds), read with `ast.literal_eval` (never `eval`); `caption` and `matching_score` are lists aligned
with it, one entry per clip. The optional columns are split per clip when they parse to a list of the same length,
and kept whole as row columns otherwise (their published form is not confirmed).
"""

from __future__ import annotations

import ast
import csv
import gzip
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

from pipelines.core.errors import TesseraUserError
from pipelines.core.rejects import BadInput, Reject
from pipelines.ingest.sources import check_file_list
from pipelines.video import schema as V

VIDEO_SOURCES = ("webvid", "panda70m")
WEBVID_COLUMNS = ("videoid", "name", "page_idx", "page_dir", "duration", "contentUrl")
PANDA_COLUMNS = ("videoID", "url", "timestamp", "caption", "matching_score")
PANDA_PER_CLIP = ("matching_score", "desirable_filtering", "shot_boundary_detection")
REQUIRED = {"webvid": ("contentUrl", "name"), "panda70m": ("url", "timestamp", "caption")}
URL_COLUMN = {"webvid": "contentUrl", "panda70m": "url"}
ID_COLUMN = {"webvid": "videoid", "panda70m": "videoID"}

# The same rule as image ingest (sql/ingest_classify.sql): http(s), a host, no whitespace.
_URL = re.compile(r"^https?://[^/\s?#]+([/?#]\S*)?$", re.IGNORECASE)
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")
MAX_LITERAL_CHARS = 1_000_000  # a list text longer than this is not parsed (literal_eval is recursive)


@dataclass(frozen=True)
class VideoRow:
    """One video to download: its URL and clips (start, end or None for the video's end, caption, extra JSON)."""

    input_file: str
    input_row: int
    video_id: str | None
    url: str
    clips: list[dict]
    extra: str


class BadRow(BadInput):
    """Raised by the row parsers; becomes a Reject."""


def parse_seconds(value) -> float:
    """Seconds from `'H:MM:SS.fff'`, `'MM:SS'`, a number or a numeric string; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = _CLOCK.match(text)
        if match:
            hours, minutes, secs = int(match.group(1) or 0), int(match.group(2)), float(match.group(3))
            if minutes >= 60 or secs >= 60:
                raise ValueError(f"{value!r} has minutes or seconds over 59")
            seconds = hours * 3600 + minutes * 60 + secs
        else:
            seconds = float(text)  # ValueError for anything else
    else:
        raise ValueError(f"{value!r} is not a time")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a time >= 0")
    return seconds


def parse_iso_duration(text) -> float | None:
    """Seconds of an ISO-8601 duration such as WebVid's `PT00H00M17S`, or None when it does not parse."""
    match = _ISO_DURATION.match(str(text or "").strip())
    if not match or not any(match.groups()):
        return None
    days, hours, minutes, secs = (float(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + secs


def _literal_list(value, column: str) -> list:
    """A list column: already a list (parquet), or the text of a Python list read with ast.literal_eval."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str) or len(value) > MAX_LITERAL_CHARS:
        raise BadRow(V.MALFORMED_TIMESTAMPS, f"{column} is not the text of a list")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise BadRow(V.MALFORMED_TIMESTAMPS, f"{column} does not parse as a Python list: {value[:80]!r}") from None
    if not isinstance(parsed, (list, tuple)):
        raise BadRow(V.MALFORMED_TIMESTAMPS, f"{column} is a {type(parsed).__name__}, not a list")
    return list(parsed)


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _id(value) -> str | None:
    return None if _blank(value) else str(value).strip()


def _json(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str, sort_keys=True)


def webvid_clips(record: dict) -> tuple[list[dict], dict]:
    """(clips, extra) of one WebVid row: the whole video, captioned by `name`."""
    caption = record.get("name")
    clip = {"start": 0.0, "end": None, "caption": "" if caption is None else str(caption), "extra": None}
    extra = {k: v for k, v in record.items() if k not in ("contentUrl", "name", "videoid")}
    seconds = parse_iso_duration(record.get("duration"))
    if seconds is not None:
        extra["duration_seconds"] = seconds
    return [clip], extra


def panda_clips(record: dict) -> tuple[list[dict], dict]:
    """(clips, extra) of one Panda-70M row: one clip per `[start, end]` pair, each with its caption and score."""
    if _blank(record.get("timestamp")):
        raise BadRow(V.NO_CLIPS, "timestamp is empty")
    pairs = _literal_list(record["timestamp"], "timestamp")
    if not pairs:
        raise BadRow(V.NO_CLIPS, "timestamp is an empty list")
    spans = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise BadRow(V.MALFORMED_TIMESTAMPS, f"timestamp[{i}] is not a [start, end] pair")
        try:
            start, end = parse_seconds(pair[0]), parse_seconds(pair[1])
        except ValueError as err:
            raise BadRow(V.MALFORMED_TIMESTAMPS, f"timestamp[{i}]: {err}") from None
        if end <= start:
            raise BadRow(V.MALFORMED_TIMESTAMPS, f"timestamp[{i}] ends at {end:g} s, not after its start {start:g} s")
        spans.append((start, end))
    captions = _literal_list(record.get("caption"), "caption")
    if len(captions) != len(spans):
        raise BadRow(V.MALFORMED_TIMESTAMPS, f"{len(captions)} captions for {len(spans)} timestamps")
    per_clip: dict[str, list] = {}
    extra = {k: v for k, v in record.items() if k not in ("url", "timestamp", "caption", "videoID")}
    for column in PANDA_PER_CLIP:
        if _blank(record.get(column)):
            extra.pop(column, None)
            continue
        try:
            values = _literal_list(record[column], column)
        except BadRow:
            values = None
        if values is not None and len(values) == len(spans):
            per_clip[column] = [_number(v) if column == "matching_score" else v for v in values]
            extra.pop(column)
        elif column == "matching_score":
            raise BadRow(V.MALFORMED_TIMESTAMPS, f"matching_score is not a list of {len(spans)} entries")
    clips = [{"start": s, "end": e, "caption": "" if captions[i] is None else str(captions[i]),
              "extra": _json({k: v[i] for k, v in per_clip.items()}) if per_clip else None}
             for i, (s, e) in enumerate(spans)]
    return clips, extra


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def video_row(source: str, path: str, row: int, record: dict) -> VideoRow | Reject:
    """One input record as a VideoRow, or a Reject (URL checks first, then the clips)."""
    url = record.get(URL_COLUMN[source])
    try:
        if _blank(url):
            raise BadRow(V.MISSING_URL, f"{URL_COLUMN[source]} is empty")
        url = str(url).strip()
        if not _URL.match(url):
            raise BadRow(V.INVALID_URL, f"not an http(s) URL: {url[:120]!r}")
        clips, extra = (webvid_clips if source == "webvid" else panda_clips)(record)
    except BadRow as bad:
        return Reject(path, row, bad.reason, bad.detail[:200])
    return VideoRow(path, row, _id(record.get(ID_COLUMN[source])), url, clips, _json(extra))


def _is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet"


def _csv_lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def _columns(path: Path) -> list[str]:
    if _is_parquet(path):
        try:
            return pq.read_schema(path).names
        except Exception as err:  # pyarrow raises several types for non-parquet bytes
            raise TesseraUserError(f"{path} is not a readable parquet file ({type(err).__name__})") from None
    try:
        with _csv_lines(path) as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as err:
        raise TesseraUserError(f"{path} cannot be read as UTF-8 CSV ({type(err).__name__}: {err})") from None


def check_video_files(source: str, files: list[Path]) -> None:
    """One-line user errors for missing, repeated or unreadable inputs and missing columns, before any write."""
    if source not in VIDEO_SOURCES:
        raise TesseraUserError(f"unknown video source '{source}'; choose one of: {', '.join(VIDEO_SOURCES)}")
    check_file_list(files)
    for path in map(Path, files):
        if not path.is_file():
            raise TesseraUserError(f"metadata file not found: {path}")
        names = _columns(path)
        missing = [c for c in REQUIRED[source] if c not in names]
        if missing:
            published = ", ".join(WEBVID_COLUMNS if source == "webvid" else PANDA_COLUMNS)
            raise TesseraUserError(
                f"{path} has no column {', '.join(map(repr, missing))}: --source {source} reads {published}; "
                f"the file has {', '.join(names[:12]) or 'no header'}")


def read_records(path: Path) -> Iterator[dict]:
    """The rows of one CSV (`.csv`, `.csv.gz`, every value a string) or parquet file, in order."""
    if _is_parquet(path):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
        return
    csv.field_size_limit(max(csv.field_size_limit(), 16 * 1024 * 1024))
    line = 0
    try:
        with _csv_lines(path) as f:
            reader = csv.DictReader(f)
            for record in reader:
                line = reader.line_num
                record.pop(None, None)  # fields beyond the header
                yield record
    except (UnicodeDecodeError, csv.Error) as err:
        raise TesseraUserError(f"{path} near line {line + 1} is not valid UTF-8 CSV ({err})") from None


def read_videos(source: str, files: list[Path]) -> Iterator[VideoRow | Reject]:
    """Every input row of `files` in order, as a VideoRow or a Reject (duplicates not yet considered)."""
    for path in (Path(f).resolve() for f in files):
        for row, record in enumerate(read_records(path)):
            yield video_row(source, str(path), row, record)
