"""Dagster resources: where data lives and how the stages run. Assets stay the same everywhere; only these change."""

import os
from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource, EnvVar

from pipelines.ingest.fetch import FetchConfig
from pipelines.ingest.image_downloader import DownloadConfig


class TesseraResource(ConfigurableResource):
    """Root folders, download settings and check thresholds shared by every asset.

    `engine` selects where the stages run (`TESSERA_ENGINE`, see `tessera_resource`): `local` loops in the step's
    process; `ray` runs CLIP scoring, captioning and tokenization on Ray Data actor pools, on the cluster named by
    `RAY_ADDRESS` (a local Ray when unset); `spark` runs curation's metadata-side selection on PySpark at
    `SPARK_MASTER` (default `local[*]`), the model stages then run locally."""

    input_dir: str = "data/incoming"
    out_dir: str = "data/tessera"
    default_source: str = "laion"  # for files directly in input_dir; files in input_dir/<source>/ use that source
    engine: Literal["local", "ray", "spark"] = "local"
    batch_size: int = 64
    num_actors: int = 1
    image_size: int = 512
    processes: int = 2
    threads: int = 32
    samples_per_shard: int = 10_000
    min_success_rate: float = 0.5
    max_guard_refusal_rate: float = 0.2  # share of downloads refused by the fetch guards before a check warns
    # Loopback/private addresses are refused unless this (or TESSERA_ALLOW_PRIVATE_NETWORK=1) allows them.
    allow_private_network: bool = False

    def path(self, *parts: str) -> Path:
        """A folder under `out_dir` (created on demand): `ingest`, `curate`, `captions`, `tokens`, `eva_clip`."""
        # Inside a run Dagster has resolved `out_dir`; a resource from `tessera_resource()` used outside one (a test,
        # a script) still holds the EnvVar, read here.
        out_dir = self.out_dir.get_value() if isinstance(self.out_dir, EnvVar) else self.out_dir
        p = Path(out_dir).joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def download_config(self) -> DownloadConfig:
        """img2dataset settings for the `image_shards` asset."""
        return DownloadConfig(image_size=self.image_size, processes=self.processes, threads=self.threads,
                              fetch=FetchConfig(allow_private_network=self.allow_private_network))


# The settings read from the environment, with the default each keeps when its variable is not set.
ENV_SETTINGS = {"input_dir": "TESSERA_INPUT_DIR", "out_dir": "TESSERA_OUT_DIR", "engine": "TESSERA_ENGINE"}


def tessera_resource() -> TesseraResource:
    """The resource of `assets.definitions`: folders from `EnvVar`s, resolved when a run starts (Dagster refuses an
    unset EnvVar, so a variable that is not set keeps the field's default and a fresh `dagster dev` needs none).
    `engine` is a `Literal`, which Dagster cannot defer, so its value is read and checked here."""
    fields = TesseraResource.model_fields
    settings = {k: EnvVar(name) for k, name in ENV_SETTINGS.items() if k != "engine" and name in os.environ}
    engine = EnvVar(ENV_SETTINGS["engine"]).get_value(fields["engine"].default)
    return TesseraResource(**settings, engine=engine)
