"""Export curated, re-captioned samples as webdataset tars for open_clip's trainer, mixing sources by weight.

Output: `OUT/<id>-NNNNN.tar` (KEY.jpg, KEY.txt = chosen caption, KEY.json), where the export id is a hash of the
export's inputs and settings (or `--name`), and `OUT/sizes.json` listing the tars of every export in OUT (see
`pipelines.export.folder`), which `python -m open_clip_train.main --dataset-type webdataset --train-data
'OUT/<id>-{00000..0000N}.tar'` reads; exports in one folder mix as `'OUT/<a>-{...}.tar::OUT/<b>-{...}.tar'`.
Mixing keeps the weights exact by down-sampling: N = min_s(count_s / weight_s) and floor(weight_s * N) per source,
chosen with a seeded generator, then interleaved by smooth weighted round-robin so every shard has the mix.
Several SRC folders: every ingest folder numbers its shards and keys from 0, so samples are told apart by (folder
index, key) and named `<index>_<key>` in the tars; `--captions` and `--curated` apply to the first SRC only.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from pipelines.caption.samples import CAPTION_DROPPED, CaptionParts
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_reader import curated_folder, shard_samples
from pipelines.core.shard_job import ShardJob
from pipelines.core.shards import complete_shards
from pipelines.export.plan import Shard, ShardSummary, available, chosen_counts, offsets, plan, shard_eligible, summarise
from pipelines.export.folder import (
    INDEX, check_export_name, fingerprint, is_complete, read_index, register, remove_stale_units, unit_name,
)

MANIFEST = INDEX  # the folder's export index, under the name the Dagster asset removes before a rebuild
FORMAT = "tessera-eva-clip-export/3"  # part of every fingerprint: a change of layout (/3: per-shard digests) makes new ids


def parse_weights(text: str | None) -> dict[str, float] | None:
    """`laion=0.8,coyo=0.2` -> {"laion": 0.8, "coyo": 0.2} (normalised to sum 1)."""
    if not text:
        return None
    weights = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise TesseraUserError(f"--weights: {part!r} is not SOURCE=NUMBER") from None
        if not sep or weights[name.strip()] <= 0:
            raise TesseraUserError(f"--weights: {part!r} is not SOURCE=POSITIVE_NUMBER")
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def _stream(shards: list[Shard], summaries: list[ShardSummary], source: str, mask: np.ndarray | None,
            captions: CaptionParts, curate_out: Path | None, prefix: bool) -> Iterator[dict]:
    """The chosen samples of `source`, shard by shard, each shard reading its own sidecar, curation and captions."""
    for (idx, shard), summary, start in zip(shards, summaries, offsets(summaries, source)):
        n = summary.counts.get(source, 0)
        if not n or (mask is not None and not mask[start:start + n].any()):
            continue
        by_source, _, own = shard_eligible((idx, shard), captions, curate_out)
        keys = by_source.get(source, [])
        picked = set(keys) if mask is None else {k for k, keep in zip(keys, mask[start:start + n]) if keep}
        table, _ = shard_samples(shard, own.final, None, with_json=True)  # `picked` holds curated keys only
        for row in table.to_pylist():
            if row["source"] == source and row["key"] in picked:
                row["caption_source"] = "final_caption" if row["key"] in own.final else "raw"
                row["ingest_key"], row["src"] = row["key"], idx
                row["key"] = f"{idx}_{row['key']}" if prefix else row["key"]
                yield row


def _interleave(streams: dict[str, Iterator[dict]], weights: dict[str, float]) -> Iterator[dict]:
    credit = {s: 0.0 for s in streams}
    live = dict(streams)
    while live:
        for s in live:
            credit[s] += weights[s]
        pick = max(live, key=lambda s: credit[s])
        credit[pick] -= sum(weights[s] for s in live)
        row = next(live[pick], None)
        if row is None:
            del live[pick]
        else:
            yield row


def _write_tar(rows: list[dict], path: Path) -> None:
    with tarfile.open(path, "w") as tf:
        for row in rows:
            meta = json.loads(row["json"] or b"{}")
            meta.update(key=row["key"], ingest_key=row["ingest_key"], src=row["src"], source=row["source"],
                        raw_caption=row["raw_caption"], caption_source=row["caption_source"])
            for ext, data in (("jpg", row["image"]), ("txt", (row["caption"] or "").encode()),
                              ("json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(f"{row['key']}.{ext}")
                info.size, info.mtime = len(data), int(time.time())
                tf.addfile(info, io.BytesIO(data))


def _write_shard(job: ShardJob, rows: list[dict], unit: str, stats: dict) -> None:
    """One output tar through the shard job: skipped when a finished one is there (a resumed export)."""
    with job.unit(unit) as writer:
        if writer is not None:
            _write_tar(rows, writer.path(f"{unit}.tar"))
            writer.commit({"samples": len(rows), **stats}, expect={f"{unit}.tar": len(rows)})


def export_fingerprint(srcs: list[Path], shards: list[Shard], summaries: list[ShardSummary],
                       weights: dict[str, float] | None, seed: int, samples_per_shard: int) -> str:
    """What decides the export's tars: the input shards (by size), each shard's summary (eligible counts per source
    and a digest of their keys and captions; the plan follows from them and the seed), the settings."""
    return fingerprint([
        FORMAT, [str(Path(s).resolve()) for s in srcs], weights, seed, samples_per_shard,
        [(i, s.shard_id, s.tar.stat().st_size, s.parquet.stat().st_size) for i, s in shards],
        [(i, s.shard_id, m.counts, m.dropped, m.digest) for (i, s), m in zip(shards, summaries)],
    ])


def export_eva_clip(srcs: list[Path], out: Path, weights: dict[str, float] | None = None,
                    captions_out: Path | None = None, curate_out: Path | None = None,
                    samples_per_shard: int = 10_000, seed: int = 0, log=print, name: str | None = None,
                    shard_ids=None) -> dict:
    """Write the mixed webdataset shards into `out` as one export; returns its manifest. `shard_ids` keeps only
    those shards (a Dagster partition's, of one SRC); every shard is read through its own files only.

    A rerun of a finished export (same inputs and settings) does nothing; an interrupted one resumes. `name` replaces
    the hashed export id; reused with other inputs or settings, it replaces that export's tars."""
    out, name = Path(out), check_export_name(name) if name else None
    shards = [(i, s) for i, src in enumerate(srcs) for s in complete_shards(src)]
    captions = CaptionParts(captions_out, [s.shard_id for i, s in shards if i == 0])  # named after no shard: loose
    if shard_ids is not None:
        wanted = set(shard_ids)
        shards = [(i, s) for i, s in shards if s.shard_id in wanted]
    curated_folder(curate_out)
    summaries = [summarise(shard, captions, curate_out) for shard in shards]
    totals = available(summaries)
    chosen = plan(totals, weights, seed)
    fp = export_fingerprint(srcs, shards, summaries, weights, seed, samples_per_shard)
    export_id = name or fp[:10]
    job = ShardJob(out)
    done = read_index(out).get(export_id)
    if done and done.get("fingerprint") == fp and is_complete(job, done):
        log(f"{out} already holds this export ({export_id}); nothing to do")
        register(job, done)  # sizes.json lists it even if someone removed that file
        return done
    out.mkdir(parents=True, exist_ok=True)
    if remove_stale_units(job, export_id, fp):
        log(f"replacing export {export_id} in {out}: made from other inputs or settings")
    sizes_of = chosen_counts(chosen, totals)
    mix = weights or {s: n / max(1, sum(sizes_of.values())) for s, n in sizes_of.items()}
    prefix = len(srcs) > 1
    streams = {s: _stream(shards, summaries, s, mask, captions, curate_out, prefix)
               for s, mask in chosen.items() if sizes_of[s]}
    stats = {"export_id": export_id, "fingerprint": fp}
    sizes: dict[str, int] = {}
    counts: Counter = Counter()
    buffer: list[dict] = []
    for row in _interleave(streams, mix):
        buffer.append(row)
        counts[row["source"]] += 1
        if len(buffer) == samples_per_shard:
            unit = unit_name(export_id, len(sizes))
            _write_shard(job, buffer, unit, stats)
            sizes[f"{unit}.tar"], buffer = len(buffer), []
    if buffer:
        unit = unit_name(export_id, len(sizes))
        _write_shard(job, buffer, unit, stats)
        sizes[f"{unit}.tar"] = len(buffer)
    manifest = {"id": export_id, "fingerprint": fp, "srcs": [str(Path(s).resolve()) for s in srcs],
                "weights": weights, "seed": seed, "samples_per_shard": samples_per_shard,
                "available": totals, "exported": dict(counts),
                "dropped": {CAPTION_DROPPED: sum(m.dropped for m in summaries)}, "key_prefix": prefix,
                "samples": sum(sizes.values()), "shards": len(sizes), "sizes": sizes}
    register(job, manifest)
    log(f"exported {manifest['samples']} samples in {len(sizes)} shards to {out} as {export_id}: {dict(counts)}")
    return manifest
