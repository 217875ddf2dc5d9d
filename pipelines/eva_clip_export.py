"""Export curated, re-captioned samples as webdataset tars for open_clip's trainer, mixing sources by weight.

Output: `OUT/NNNNN.tar` (KEY.jpg, KEY.txt = chosen caption, KEY.json) and `OUT/sizes.json` (written last), which
`python -m open_clip_train.main --dataset-type webdataset --train-data 'OUT/{00000..0000N}.tar'` reads.
Mixing keeps the weights exact by down-sampling: N = min_s(count_s / weight_s) and floor(weight_s * N) per source,
chosen with a seeded generator, then interleaved by smooth weighted round-robin so every shard has the mix.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

from pipelines import schema as S
from pipelines.errors import TesseraUserError
from pipelines.samples import load_curated_keys, load_final_captions, shard_samples
from pipelines.shard_io import read_json, write_json_atomic
from pipelines.shards import ShardPaths, complete_shards, read_sidecar

MANIFEST = "export_manifest.json"


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


def _eligible(shards: list[ShardPaths], curated: set[str] | None) -> dict[str, list[str]]:
    """source -> keys of downloaded (and curated) samples, in shard order; from sidecars only, no image reads."""
    by_source: dict[str, list[str]] = {}
    for shard in shards:
        side = read_sidecar(shard, columns=[S.KEY, S.STATUS, S.SOURCE])
        for key, status, source in zip(*(side[c].to_pylist() for c in (S.KEY, S.STATUS, S.SOURCE))):
            if status == S.STATUS_SUCCESS and (curated is None or str(key) in curated):
                by_source.setdefault(source or "unknown", []).append(str(key))
    return by_source


def plan(by_source: dict[str, list[str]], weights: dict[str, float] | None, seed: int) -> dict[str, set[str]]:
    """The keys each source contributes so that the mix matches `weights` exactly (up to rounding)."""
    if weights is None:
        return {s: set(keys) for s, keys in by_source.items()}
    missing = [s for s in weights if not by_source.get(s)]
    if missing:
        raise TesseraUserError(f"--weights names sources with no samples: {', '.join(missing)} "
                               f"(found: {', '.join(sorted(by_source)) or 'none'})")
    total = min(len(by_source[s]) / w for s, w in weights.items())
    rng = random.Random(seed)
    return {s: set(rng.sample(by_source[s], math.floor(w * total + 1e-9))) for s, w in weights.items()}


def _stream(shards: list[ShardPaths], source: str, keys: set[str], captions, curated) -> Iterator[dict]:
    for shard in shards:
        table, _ = shard_samples(shard, captions, curated, with_json=True)
        for row in table.to_pylist():
            if row["source"] == source and row["key"] in keys:
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


def _write_tar(rows: list[dict], captions: dict[str, str], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tarfile.open(tmp, "w") as tf:
        for row in rows:
            meta = json.loads(row["json"] or b"{}")
            meta.update(key=row["key"], source=row["source"], raw_caption=row["raw_caption"],
                        caption_source="final_caption" if row["key"] in captions else "raw")
            for ext, data in (("jpg", row["image"]), ("txt", (row["caption"] or "").encode()),
                              ("json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(f"{row['key']}.{ext}")
                info.size, info.mtime = len(data), int(time.time())
                tf.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def export_eva_clip(srcs: list[Path], out: Path, weights: dict[str, float] | None = None,
                    captions_out: Path | None = None, curate_out: Path | None = None,
                    samples_per_shard: int = 10_000, seed: int = 0, log=print) -> dict:
    """Write the mixed webdataset shards; a rerun after completion (sizes.json present) does nothing."""
    out = Path(out)
    if read_json(out / S.SIZES_FILE) is not None and read_json(out / MANIFEST) is not None:
        log(f"{out} already exported; delete {out / S.SIZES_FILE} to redo")
        return read_json(out / MANIFEST)
    out.mkdir(parents=True, exist_ok=True)
    captions, curated = load_final_captions(captions_out), load_curated_keys(curate_out)
    shards = [s for src in srcs for s in complete_shards(src)]
    by_source = _eligible(shards, curated)
    chosen = plan(by_source, weights, seed)
    mix = weights or {s: len(k) / max(1, sum(map(len, chosen.values()))) for s, k in chosen.items()}
    streams = {s: _stream(shards, s, keys, captions, curated) for s, keys in chosen.items() if keys}
    sizes: dict[str, int] = {}
    counts: Counter = Counter()
    buffer: list[dict] = []
    for row in _interleave(streams, mix):
        buffer.append(row)
        counts[row["source"]] += 1
        if len(buffer) == samples_per_shard:
            name = f"{len(sizes):05d}.tar"
            _write_tar(buffer, captions, out / name)
            sizes[name], buffer = len(buffer), []
    if buffer:
        name = f"{len(sizes):05d}.tar"
        _write_tar(buffer, captions, out / name)
        sizes[name] = len(buffer)
    manifest = {"srcs": [str(Path(s).resolve()) for s in srcs], "weights": weights, "seed": seed,
                "available": {s: len(k) for s, k in by_source.items()}, "exported": dict(counts),
                "samples": sum(sizes.values()), "shards": len(sizes)}
    write_json_atomic(manifest, out / MANIFEST)
    write_json_atomic(sizes, out / S.SIZES_FILE)
    log(f"exported {manifest['samples']} samples in {len(sizes)} shards to {out}: {dict(counts)}")
    return manifest
