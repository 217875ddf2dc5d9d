"""Reading re-captioning output one ingest shard at a time: its final captions and the keys whose caption was dropped.

Re-captioning output (`CAPTIONS_OUT`) is a tree of parquet files with `key` and `final_caption`. `tessera caption`
writes one part per ingest shard, `captions/<shard id>.parquet`: a shard reads only the files named after it. A file
named after no shard of the ingest folder (a hand-made `part.parquet`, CapsFusion metadata parts) applies to every
shard: each shard reads it filtered to its own keys. Nothing holds the captions of the whole pool. The samples of an
image shard with these captions applied are read by `pipelines.core.shard_reader.shard_samples`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.core import schema as S
from pipelines.caption.hygiene import SOURCE_DROPPED
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_reader import shard_curated_keys
from pipelines.core.shards import ShardPaths, read_sidecar

FINAL_CAPTION = "final_caption"
CAPTION_SOURCE = "caption_source"
CAPTION_DROPPED = "caption_dropped"  # skip / drop reason of a sample whose caption was dropped


@dataclass(frozen=True)
class ShardCaptions:
    """One shard's re-captioning: key -> final caption, and the keys whose caption was dropped."""

    final: dict[str, str]
    dropped: set[str]


NO_CAPTIONS = ShardCaptions({}, set())


class CaptionParts:
    """The caption files of a `CAPTIONS_OUT` tree by ingest shard; only file names are listed up front."""

    def __init__(self, captions_out: Path | None, shard_ids) -> None:
        self.own: dict[str, list[Path]] = {}
        self.loose: list[Path] = []
        if captions_out is None:
            return
        if not Path(captions_out).is_dir():
            raise TesseraUserError(f"--captions {captions_out} is not a folder")
        ids = set(shard_ids)
        for f in sorted(Path(captions_out).rglob("*.parquet")):
            if f.stem in ids:
                self.own.setdefault(f.stem, []).append(f)
            else:
                self.loose.append(f)

    def for_shard(self, shard_id: str, keys: set[str]) -> ShardCaptions:
        """The captions of one shard holding `keys`: its own parts, then the loose files, in path order.

        A row with `caption_source == "dropped"` (`caption --fallback drop`) marks its key as dropped unless another
        row gives that key a caption; other rows with an empty or null final caption are ignored (the raw caption
        is used). A later file's caption for a key replaces an earlier one's."""
        files = sorted([*self.own.get(shard_id, ()), *self.loose])
        if not files:
            return NO_CAPTIONS
        out: dict[str, str] = {}
        dropped: set[str] = set()
        value_set = pa.array(sorted(keys), pa.string())
        for f in files:
            table = _read(f, f in self.own.get(shard_id, ()), keys, value_set)
            if table is None:
                continue
            sources = table.column(CAPTION_SOURCE).to_pylist() if CAPTION_SOURCE in table.column_names \
                else [None] * table.num_rows
            for k, c, src in zip(table.column(S.KEY).to_pylist(), table.column(FINAL_CAPTION).to_pylist(), sources):
                if c:
                    out[str(k)] = c
                elif src == SOURCE_DROPPED:
                    dropped.add(str(k))
        return ShardCaptions(out, dropped - out.keys())


def _read(path: Path, own: bool, keys: set[str], value_set: pa.Array) -> pa.Table | None:
    """Key, final caption (and source) rows of one file for a shard's keys; None for a file without captions. A
    loose file is streamed by record batch and filtered, so a big one costs its rows for this shard only."""
    try:
        names = set(pq.read_schema(path).names)
        if {S.KEY, FINAL_CAPTION} - names:
            return None
        cols = [S.KEY, FINAL_CAPTION] + ([CAPTION_SOURCE] if CAPTION_SOURCE in names else [])
        if own:
            table = _keys_as_text(pq.read_table(path, columns=cols))
        else:
            batches = (_keys_as_text(pa.Table.from_batches([b]))
                       for b in pq.ParquetFile(path).iter_batches(columns=cols))
            kept = [t.filter(pc.is_in(t.column(S.KEY), value_set=value_set)) for t in batches]
            return pa.concat_tables(kept) if kept else None
    except (OSError, pa.ArrowInvalid) as err:
        raise TesseraUserError(f"--captions: {path} is not a readable parquet file ({err})") from None
    foreign = set(table.column(S.KEY).to_pylist()) - keys
    if foreign:
        raise TesseraUserError(
            f"--captions: {path} is named after shard {path.stem} but gives key {min(foreign)!r}, which that shard "
            "does not hold: caption parts are read per ingest shard (give a file meant for every shard another name)")
    return table


def _keys_as_text(table: pa.Table) -> pa.Table:
    return table.set_column(0, S.KEY, pc.cast(table.column(S.KEY), pa.string()))


def shard_inputs(shard: ShardPaths, captions: CaptionParts, curate_out: Path | None) -> tuple[ShardCaptions, set[str] | None]:
    """A shard's own captions and curated keys (None: no curation), read from its own files only."""
    curated = shard_curated_keys(curate_out, shard.shard_id)
    if not captions.own and not captions.loose:
        return NO_CAPTIONS, curated
    keys = {str(k) for k in read_sidecar(shard, columns=[S.KEY]).column(S.KEY).to_pylist()}
    return captions.for_shard(shard.shard_id, keys), curated
