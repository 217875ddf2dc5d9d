"""Tokenize every finished ingest shard into `OUT/emu3_tokens/NNNNN.parquet`, resumably, plus a manifest.

Per shard: `emu3_tokens/NNNNN.parquet` (key, caption, h, w, codes, tokenizer), `emu3_dropped/NNNNN.parquet` (key,
drop_reason) and `emu3_tokens/NNNNN_stats.json` last, as the completion marker. `OUT/manifest.json` sums the stats.
`OUT/tokenizer_config.json` records the settings that shape the codes; a resume with other settings is refused.
Samples whose caption re-captioning dropped (`--fallback drop`) go to the ledger as `caption_dropped`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core import schema as S
from pipelines.core.errors import TesseraUserError
from pipelines.tokenize.image_tokenizer import CODES, GRID_H, GRID_W, TOKENIZER, ImageTokenizer, ImageTokenizerConfig
from pipelines.core.runner import RunnerConfig, StageRunner
from pipelines.caption.samples import CAPTION_DROPPED, CaptionParts, shard_inputs
from pipelines.core.locks import exclusive, lock_path
from pipelines.core.shard_reader import curated_folder, shard_samples
from pipelines.core.shard_io import read_json, write_json_atomic
from pipelines.core.shard_job import ShardJob
from pipelines.core.shards import complete_shards
from pipelines.core.stage import StageConfig

TOKENS_DIR = "emu3_tokens"
DROPPED_DIR = "emu3_dropped"
MANIFEST = "manifest.json"
CONFIG_FILE = "tokenizer_config.json"
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.index.json")
CONFIG_FIELDS = ("vq_model", "target_area", "min_area", "max_area", "max_aspect_ratio", "dtype")
SQUARE_WARNING = ("warning: every input image is {w}x{h} (img2dataset `border` resize?): Emu3 keeps each image's "
                  "aspect ratio, so re-ingest with `tessera ingest --resize-mode keep_ratio`")
TOKEN_COLUMNS = ("key", "caption", GRID_H, GRID_W, CODES, TOKENIZER)


def predicted_area(width, height, cfg: ImageTokenizerConfig) -> int:
    """Sort key that puts images with the same final size next to each other (exact size needs the decoded image)."""
    if not width or not height:
        return 0
    ratio = math.sqrt(cfg.target_area / (width * height))
    return int(round(width * ratio)) * 100_000 + int(round(height * ratio))


def _order_by_shape(table: pa.Table, cfg: ImageTokenizerConfig) -> tuple[pa.Table, list[int]]:
    keys = [predicted_area(w, h, cfg) for w, h in zip(table["width"].to_pylist(), table["height"].to_pylist())]
    order = sorted(range(table.num_rows), key=lambda i: (keys[i], i))
    return table.take(order), order


def tokenize_shard(stage: ImageTokenizer, runner: StageRunner, samples: pa.Table) -> pa.Table:
    """Run the stage over one shard's samples in shape-sorted order and return the rows in input order."""
    ordered, order = _order_by_shape(samples, stage.config)
    result = runner.run(stage, ordered)
    inverse = [0] * len(order)
    for pos, i in enumerate(order):
        inverse[i] = pos
    return result.take(inverse)


def check_vq_model(ref: str) -> None:
    """Fail with one line when `ref` is not a loadable Emu3VQVAE (unknown hub id, missing or foreign folder)."""
    from transformers import Emu3VQVAEConfig

    from models.vision_tokenizer import resolve

    path = Path(resolve(ref))
    if path.is_dir() and not (path / "config.json").is_file():
        raise TesseraUserError(f"--vq-model {ref!r} is a folder without config.json, not an Emu3VQVAE checkpoint")
    if path.is_dir() and not any(path.glob(pattern) for pattern in WEIGHT_FILES):
        raise TesseraUserError(f"--vq-model {ref!r} is a folder without weights ({', '.join(WEIGHT_FILES)})")
    try:
        Emu3VQVAEConfig.from_pretrained(str(path) if path.is_dir() else ref)  # a hub id: config download only
    except (OSError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise TesseraUserError(f"--vq-model {ref!r} is not a loadable Emu3VQVAE checkpoint: {reason}") from None


def check_config(out: Path, stage_config: StageConfig, fields: tuple[str, ...] = CONFIG_FIELDS,
                 file_name: str = CONFIG_FILE, what: str = "tokens") -> None:
    """Record the code-shaping `fields` of `stage_config` in `out/file_name` on first use; refuse to resume `out`
    with different ones (`what` names the outputs in the message)."""
    wanted = {k: getattr(stage_config, k) for k in fields}
    stored = read_json(Path(out) / file_name)
    if stored is None:
        write_json_atomic(wanted, Path(out) / file_name)
        return
    diff = [f"{k}={stored.get(k)!r} (now {v!r})" for k, v in wanted.items() if stored.get(k) != v]
    if diff:
        raise TesseraUserError(f"{out} holds {what} made with other settings: {', '.join(diff)}; "
                               f"use another --out or the same settings")


def _split_caption_dropped(samples: pa.Table, dropped_keys: set[str]) -> tuple[pa.Table, list[str]]:
    if not dropped_keys or not samples.num_rows:
        return samples, []
    mask = pa.array([k in dropped_keys for k in samples["key"].to_pylist()], pa.bool_())
    return samples.filter(pc.invert(mask)), samples.filter(mask)["key"].to_pylist()


def tokenize_shards(src: Path, out: Path, stage_config: ImageTokenizerConfig, runner_config: RunnerConfig,
                    captions_out: Path | None = None, curate_out: Path | None = None, log=print,
                    shard_ids=None) -> dict:
    """Tokenize the finished shards of `src` (those among `shard_ids` when given) not yet done under `out`; returns
    the folder's manifest. Each shard's unit reads only its own curated keys and caption parts."""
    out = Path(out)
    shards = complete_shards(src)
    captions = CaptionParts(captions_out, [s.shard_id for s in shards])
    curated_folder(curate_out)  # a wrong --curated fails before the model loads
    if shard_ids is not None:
        wanted = set(shard_ids)
        shards = [s for s in shards if s.shard_id in wanted]
    check_vq_model(stage_config.vq_model)
    check_config(out, stage_config)
    stage, runner = ImageTokenizer(stage_config), StageRunner(runner_config)
    sizes: set[tuple] = set()
    seen = 0
    job = token_job(out)
    pending = set(job.pending(s.shard_id for s in shards))
    for shard in (s for s in shards if s.shard_id in pending):
        with job.unit(shard.shard_id) as writer:
            if writer is None:  # a concurrent run finished it meanwhile
                continue
            own, curated = shard_inputs(shard, captions, curate_out)
            samples, skipped = shard_samples(shard, own.final, curated)
            sizes.update(zip(samples["width"].to_pylist(), samples["height"].to_pylist()))
            seen += samples.num_rows
            stats = _tokenize_one(shard.shard_id, samples, skipped, own.dropped, own.final, stage, runner, writer)
        log(f"shard {shard.shard_id}: {stats['tokenized']}/{stats['samples']} tokenized, {stats['total_tokens']} "
            f"tokens, {stats['images_per_s']} img/s")
    (w, h), *others = sizes or [(None, None)]
    if seen > 1 and not others and w and w == h:
        log(SQUARE_WARNING.format(w=w, h=h))
    return write_manifest(out, src, stage_config)


def token_job(out: Path) -> ShardJob:
    """The shard job whose units are `emu3_tokens/NNNNN.parquet` + `emu3_dropped/NNNNN.parquet`."""
    return ShardJob(out, TOKENS_DIR)


def _tokenize_one(shard_id, samples, skipped, caption_dropped, captions, stage, runner, writer) -> dict:
    """Tokenize one shard's samples and commit its token and dropped files; returns its stats."""
    t0 = time.time()
    todo, cap_dropped = _split_caption_dropped(samples, caption_dropped)
    result = tokenize_shard(stage, runner, todo) if todo.num_rows else None
    ok = result.filter(pc.is_null(result[S.DROP_REASON])) if result is not None else None
    kept = ok.select(list(TOKEN_COLUMNS)) if ok is not None else _empty_tokens()
    dropped_keys, reasons = [], []
    if result is not None:
        bad = result.filter(pc.is_valid(result[S.DROP_REASON]))
        dropped_keys, reasons = bad["key"].to_pylist(), bad[S.DROP_REASON].to_pylist()
    dropped = pa.table({"key": pa.array(cap_dropped + dropped_keys, pa.string()),
                        S.DROP_REASON: pa.array([CAPTION_DROPPED] * len(cap_dropped) + reasons, pa.string())})
    tokens_rel, dropped_rel = f"{TOKENS_DIR}/{shard_id}.parquet", f"{DROPPED_DIR}/{shard_id}.parquet"
    writer.parquet(kept, tokens_rel)
    writer.parquet(dropped, dropped_rel)
    codes = sum(h * w for h, w in zip(kept[GRID_H].to_pylist(), kept[GRID_W].to_pylist()))
    seconds = time.time() - t0
    stats = {
        "shard": shard_id, "samples": samples.num_rows, "tokenized": kept.num_rows,
        "dropped": dict(Counter(dropped[S.DROP_REASON].to_pylist())), "skipped": skipped,
        "total_tokens": codes, "captions_from_recaptioning": sum(k in captions for k in kept["key"].to_pylist()),
        "seconds": round(seconds, 3), "images_per_s": round(samples.num_rows / max(seconds, 1e-9), 2),
    }
    return writer.commit(stats)


def _empty_tokens() -> pa.Table:
    return pa.table({"key": pa.array([], pa.string()), "caption": pa.array([], pa.string()),
                     GRID_H: pa.array([], pa.int32()), GRID_W: pa.array([], pa.int32()),
                     CODES: pa.array([], pa.list_(pa.int32())), TOKENIZER: pa.array([], pa.string())})


def write_manifest(out: Path, src: Path, stage_config: StageConfig, job: ShardJob | None = None,
                   fields: tuple[str, ...] = ("samples", "tokenized", "total_tokens"), name: str = MANIFEST) -> dict:
    """Sum the per-shard stats of `job` (default: the image token shards of `out`) into `OUT/<name>`: each of
    `fields` summed, the dropped and skipped counts merged."""
    # Partitions of one folder run at once: under the lock, the last writer reads every marker committed before it.
    with exclusive(lock_path(Path(out), f"manifest-{name}"), what=f"{Path(out) / name}", wait=True):
        return _write_manifest(out, src, stage_config, job, fields, name)


def _write_manifest(out, src, stage_config, job, fields, name) -> dict:
    stats = list((job or token_job(out)).finished().values())
    dropped: Counter = Counter()
    skipped: Counter = Counter()
    for s in stats:
        dropped.update(s["dropped"])
        skipped.update(s["skipped"])
    manifest = {"src": str(Path(src).resolve()), "tokenizer": f"emu3_vq:{stage_config.vq_model}",
                "config": stage_config.model_dump(), "shards": [s["shard"] for s in stats],
                **{k: sum(s[k] for s in stats) for k in fields}, "dropped": dict(dropped), "skipped": dict(skipped)}
    write_json_atomic(manifest, Path(out) / name)
    return manifest
