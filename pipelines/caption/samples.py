"""Reading re-captioning output: the final caption per key and the keys whose caption was dropped.

Re-captioning output (`CAPTIONS_OUT`) is any tree of parquet files with `key` and `final_caption`. The samples of an
image shard with these captions applied are read by `pipelines.core.shard_reader.shard_samples`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.caption.hygiene import SOURCE_DROPPED
from pipelines.core.errors import TesseraUserError

FINAL_CAPTION = "final_caption"
CAPTION_SOURCE = "caption_source"
CAPTION_DROPPED = "caption_dropped"  # skip / drop reason of a sample whose caption was dropped


def load_final_captions(captions_out: Path | None) -> tuple[dict[str, str], set[str]]:
    """(key -> final caption, keys whose caption was dropped) from re-captioning output.

    A row with `caption_source == "dropped"` (`caption --fallback drop`) marks its key as dropped unless another row
    gives that key a caption; other rows with an empty or null final caption are ignored (the raw caption is used).
    """
    if captions_out is None:
        return {}, set()
    if not Path(captions_out).is_dir():
        raise TesseraUserError(f"--captions {captions_out} is not a folder")
    files = sorted(Path(captions_out).rglob("*.parquet"))
    out: dict[str, str] = {}
    dropped: set[str] = set()
    for f in files:
        names = set(pq.read_schema(f).names)
        if {S.KEY, FINAL_CAPTION} - names:
            continue
        cols = [S.KEY, FINAL_CAPTION] + ([CAPTION_SOURCE] if CAPTION_SOURCE in names else [])
        t = pq.read_table(f, columns=cols)
        sources = t.column(CAPTION_SOURCE).to_pylist() if CAPTION_SOURCE in names else [None] * t.num_rows
        for k, c, src in zip(t.column(S.KEY).to_pylist(), t.column(FINAL_CAPTION).to_pylist(), sources):
            if c:
                out[str(k)] = c
            elif src == SOURCE_DROPPED:
                dropped.add(str(k))
    return out, dropped - out.keys()
