"""Dagster wiring for the training feeds and the training runs.

`emu3_token_shards` and `eva_clip_shards` follow `fused_captions` and `curated_selection` (either may be absent: then
raw captions / every downloaded image are used). Both are partitioned by `metadata_files` like their inputs: a
partition tokenizes / exports only the shards its ingest owns, so a new metadata file costs its own work. The
training runs launch `pipelines.train_*` through Dagster Pipes and report loss and throughput as metadata; they are in
`TRAINING_ASSETS`, not `ASSETS`, so the nightly schedule never starts a training run. No `from __future__ import annotations`: Dagster resolves Config annotations.
"""

import hashlib
import json
import re

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    PipesSubprocessClient,
    asset,
    asset_check,
)

from assets.metadata import markdown_metadata
from assets.partitions import metadata_files, partition_shard_ids
from assets.resources import TesseraResource
from models.emu3_preprocessing import MAX_AREA, MAX_ASPECT_RATIO, MIN_AREA, TARGET_AREA
from pipelines.core.runner import RunnerConfig

UPSTREAM = [AssetKey("fused_captions"), AssetKey("curated_selection")]


class TokenShardsConfig(Config):
    """The VQ model and Emu3's preprocessing (512^2 pretraining, 720^2 SFT)."""

    vq_model: str = "tiny"  # `tiny`, a local Emu3VQVAE folder, or a hub id such as BAAI/Emu3-Gen-hf
    target_area: int = TARGET_AREA
    min_area: int = MIN_AREA
    max_area: int = MAX_AREA
    max_aspect_ratio: float = MAX_ASPECT_RATIO
    dtype: str = "float32"


class EvaClipShardsConfig(Config):
    """The source mix and shard size of the open_clip export."""

    weights: str = ""  # e.g. "laion=0.8,coyo=0.2"; empty keeps every source as found
    samples_per_shard: int = 10_000


class EvaClipRunConfig(Config):
    """open_clip model and schedule of a training run."""

    model: str = "tessera-tiny-clip"
    epochs: int = 1
    batch_size: int = 8
    lr: float = 5e-4
    nproc: int = 1


class Emu3RunConfig(Config):
    """Emu3ForCausalLM reference and schedule of a training run."""

    lm: str = "tiny"
    tokenizer: str = "tiny"
    steps: int = 10
    batch_size: int = 2
    lr: float = 3e-3
    nproc: int = 1


def export_name(partition_key: str) -> str:
    """The export id of a partition's eva_clip export (its tar names): the key itself when it is a valid name, else
    its safe characters plus a digest, so a rerun of the partition replaces its own tars and no other's."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", partition_key):
        return partition_key
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", partition_key).lstrip("_.-")[:48] or "p"
    return f"{safe}-{hashlib.sha256(partition_key.encode()).hexdigest()[:12]}"


def _optional_inputs(tessera: TesseraResource):
    captions = tessera.path("captions")
    curate = tessera.path("curate")
    return (captions if any(captions.rglob("*.parquet")) else None,
            curate if (curate / "curated").is_dir() else None)


@asset(deps=UPSTREAM, partitions_def=metadata_files, pool="gpu", group_name="training_data")
def emu3_token_shards(context: AssetExecutionContext, config: TokenShardsConfig, tessera: TesseraResource):
    """Emu3 discrete image tokens per ingest shard (`tokens/emu3_tokens/*.parquet`), with final captions; a
    partition tokenizes only its own shards (finished ones are skipped).

    Metadata: counts, drops by reason and code grid sizes (tables), and the tokens per image plot."""
    from pipelines.stats.token_figures import tokens_section
    from pipelines.tokenize.image_tokenizer import ImageTokenizerConfig
    from pipelines.tokenize.shards import tokenize_shards

    captions, curate = _optional_inputs(tessera)
    stage = ImageTokenizerConfig(vq_model=config.vq_model, target_area=config.target_area, min_area=config.min_area,
                                 max_area=config.max_area, max_aspect_ratio=config.max_aspect_ratio, dtype=config.dtype)
    engine = "ray" if tessera.engine == "ray" else "local"  # Spark (TESSERA_ENGINE=spark) is metadata-only
    runner = RunnerConfig(engine=engine, batch_size=tessera.batch_size, num_actors=tessera.num_actors)
    own = partition_shard_ids(tessera.path("ingest"), context.partition_key)
    m = tokenize_shards(tessera.path("ingest"), tessera.path("tokens"), stage, runner, captions, curate,
                        log=context.log.info, shard_ids=own)
    section = tokens_section(tessera.path("tokens"))
    return MaterializeResult(metadata={
        "samples": m["samples"], "tokenized": m["tokenized"], "total_tokens": m["total_tokens"],
        "shards": len(m["shards"]), "dropped": json.dumps(m["dropped"]), "tokenizer": m["tokenizer"],
        "mean_tokens_per_image": section.facts["mean_tokens_per_image"], **markdown_metadata(section),
    })


@asset(deps=UPSTREAM, partitions_def=metadata_files, group_name="training_data")
def eva_clip_shards(context: AssetExecutionContext, config: EvaClipShardsConfig, tessera: TesseraResource):
    """open_clip webdataset shards (`eva_clip/<export>-*.tar` + sizes.json listing every export), one export per
    partition named after its key (`export_name`), sources mixed by weight within the partition's shards; a rerun
    with other inputs or settings replaces that partition's tars only."""
    from pipelines.export.eva_clip import export_eva_clip, parse_weights

    own = partition_shard_ids(tessera.path("ingest"), context.partition_key)
    captions, curate = _optional_inputs(tessera)
    name = export_name(context.partition_key)
    m = export_eva_clip([tessera.path("ingest")], tessera.path("eva_clip"), parse_weights(config.weights), captions,
                        curate, config.samples_per_shard, log=context.log.info, name=name, shard_ids=own)
    return MaterializeResult(metadata={"samples": m["samples"], "shards": m["shards"], "export": name,
                                       "exported": json.dumps(m["exported"])})


@asset(deps=[eva_clip_shards], pool="gpu", group_name="training")
def eva_clip_training_run(context: AssetExecutionContext, config: EvaClipRunConfig, tessera: TesseraResource):
    """Contrastive training with open_clip_train on `eva_clip_shards`, launched through Dagster Pipes."""
    from pipelines.train.launch import eva_clip_command

    cmd = eva_clip_command(tessera.path("eva_clip"), tessera.path("runs", "eva_clip"), model=config.model,
                           epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                           name=f"run-{context.run.run_id[:8]}", nproc=config.nproc)
    return PipesSubprocessClient().run(command=cmd, context=context).get_materialize_result()


@asset(deps=[emu3_token_shards], pool="gpu", group_name="training")
def emu3_training_run(context: AssetExecutionContext, config: Emu3RunConfig, tessera: TesseraResource):
    """Emu3 next-token training on `emu3_token_shards`, launched through Dagster Pipes."""
    from pipelines.train.launch import emu3_command

    out = tessera.path("runs", "emu3", context.run.run_id[:8])
    cmd = emu3_command(tessera.path("tokens"), out, steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                       lm=config.lm, tokenizer=config.tokenizer, nproc=config.nproc)
    return PipesSubprocessClient().run(command=cmd, context=context).get_materialize_result()


@asset_check(asset=emu3_token_shards, blocking=True,
             description="Every code grid has h*w codes inside the codebook.")
def check_emu3_token_shards_grids(tessera: TesseraResource):
    """Runs sql/check_emu3_token_grids.sql over the token shards."""
    from pipelines.core.sql import connect, literal, sql_text

    files = tessera.path("tokens", "emu3_tokens")
    if not any(files.glob("*.parquet")):
        return AssetCheckResult(passed=True, metadata={"rows": 0})
    con = connect()
    con.execute(f"CREATE VIEW tokens AS SELECT * FROM read_parquet({literal(files / '*.parquet')})")
    rows, bad_len, out_of_range = con.execute(sql_text("check_emu3_token_grids")).fetchone()
    return AssetCheckResult(passed=bad_len == 0 and out_of_range == 0,
                            metadata={"rows": rows, "bad_length": bad_len, "out_of_range": out_of_range})


ASSETS = [emu3_token_shards, eva_clip_shards]
TRAINING_ASSETS = [eva_clip_training_run, emu3_training_run]
CHECKS = [check_emu3_token_shards_grids]
