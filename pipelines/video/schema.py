"""The video layout, column names and outcome strings shared by every video stage.

Input rows are videos (one URL each); a row holds one clip (WebVid: the whole video) or several (Panda-70M: one per
`[start, end]` timestamp pair, each with its caption). Every input row and every clip ends in exactly one outcome.

Ingest folder (`tessera ingest --source webvid|panda70m --out OUT`):
- `OUT/video/<partition>.json` partition manifest (source, files, rows, clips, shard range), written last;
- `OUT/video/<partition>.rejects.parquet` rows rejected before download (input_file, input_row, reason, detail);
- `OUT/video/<partition>.prepared.parquet` accepted rows: `input_file`, `input_row`, `video_id`, `url`, `clips`
  (list of struct start/end seconds, caption, extra JSON), `extra` (every other source column, JSON);
- `OUT/clips/NNNNN.tar` webdataset: per clip `<key>.mp4` (H.264, fixed fps and size), `<key>.txt` (caption),
  `<key>.json` (video_id, url, start, end, fps, width, height, frames, source columns);
- `OUT/clips/NNNNN.parquet` per-clip sidecar: key, input_file, input_row, clip, video_id, url, caption, start, end,
  status ("success" | "failed"), reason, error_message, duration, width, height, fps, frames, bytes;
- `OUT/clips/NNNNN.rows.parquet` per-row sidecar: input_file, input_row, video_id, url, status ("success" |
  "failed"), reason, error_message, clips, clips_ok, bytes_downloaded;
- `OUT/clips/NNNNN_stats.json` the shard job's marker, written after the three files verify.
Keys: `{shard:05d}{row_in_shard:04d}_{clip:03d}` (video2dataset's `{key}_{clip}` shape); stable across reruns.
"""

from __future__ import annotations

VIDEO_DIR = "video"
CLIPS_DIR = "clips"

# Clip and row statuses (img2dataset's words).
SUCCESS, FAILED = "success", "failed"

# Reject reasons before download.
MISSING_URL = "missing_url"
INVALID_URL = "invalid_url"
DUPLICATE_URL = "duplicate_url"
MALFORMED_TIMESTAMPS = "malformed_timestamps"
NO_CLIPS = "no_clips"

# Clip failure reasons (the fetch layer's reasons, `<reason>: <detail>`, are kept as they are for rows).
NOT_A_VIDEO = "not_a_video"
DECODE_ERROR = "video_decode_error"
CLIP_OUT_OF_RANGE = "clip_out_of_range"
CLIP_TOO_SHORT = "clip_too_short"
VIDEO_NOT_DOWNLOADED = "video_not_downloaded"
ENCODE_ERROR = "encode_error"
